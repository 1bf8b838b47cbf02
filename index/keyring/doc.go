// Package keyring is the record format of a person's keyring share and the
// device's note of which shares it follows because of it.
//
// # Nouns
//
// The keyring is an ordinary share (its own key, membership log and key
// epochs) whose only members are one person's devices. Each of its files
// is one Record: a capability of another share the person holds (share ID,
// name, the share key at the person's level, and the device that wrote it,
// which admits the person's other devices to that share). A record file is
// named FileName(id) and sealed:
//
//	+---------+-----------+---------------------------------------------+
//	| version |   nonce   | XChaCha20-Poly1305(JSON record), tag 16     |
//	|  1 (1)  |    24     | AD = "blueshift keyring record " + share ID |
//	+---------+-----------+---------------------------------------------+
//
// under a key derived (HKDF-SHA256) from the keyring's read key, so only a
// holder of the keyring's secret reads a record: not an encrypted (relay)
// member, not a backup of the folder, not a file renamed to another
// share's name (the share ID is bound as associated data).
//
// Followed is a small Pebble set (tag 'Y') of the shares this device took
// from its keyring: one the user later removes is not taken again.
//
// # Contracts
//
// Open checks the size before it decrypts and never panics; Seal and Open
// are pure functions. Followed is safe for concurrent use (Pebble is).
package keyring
