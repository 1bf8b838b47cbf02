package keyring

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

const (
	// MaxRecord bounds a sealed record file; Open refuses a larger one
	// before reading it whole.
	MaxRecord = 4096
	// Ext is the file name extension of records in the keyring folder.
	Ext = ".cap"

	version    = 1
	sealInfo   = "blueshift keyring record key v1"
	adPrefix   = "blueshift keyring record "
	maxNameLen = 255
)

// ErrRecord is the class of keyring files that are not a valid record:
// sealed under another keyring, tampered with, renamed, or malformed.
var ErrRecord = errors.New("invalid keyring record")

// Record is one capability in the keyring.
type Record struct {
	Share share.ID
	Name  string            // the share's name, the folder name it is followed under
	Key   share.Key         // the capability, at the level the person holds
	From  identity.DeviceID // the device that wrote it: it admits the person's other devices
}

type recordJSON struct {
	Share string `json:"share"`
	Name  string `json:"name"`
	Key   string `json:"key"`
	From  string `json:"from"`
}

// FileName is the name of share id's record in the keyring folder.
func FileName(id share.ID) string { return id.String() + Ext }

// IsRecordName reports whether a file name in the keyring folder is a
// record's (the folder also holds the share's .blueshift metadata).
func IsRecordName(name string) bool {
	id, ok := strings.CutSuffix(name, Ext)
	if !ok {
		return false
	}
	_, err := share.ParseID(id)
	return err == nil
}

// Seal encodes r sealed under the keyring whose key is ring.
func Seal(ring share.Key, r Record) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	aead, err := recordAEAD(ring)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(recordJSON{Share: r.Share.String(), Name: r.Name, Key: r.Key.String(), From: r.From.String()})
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, 1+chacha20poly1305.NonceSizeX+len(plain)+aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal keyring record: %w", err)
	}
	out = aead.Seal(out, out[1:], plain, []byte(adPrefix+r.Share.String()))
	if len(out) > MaxRecord {
		return nil, fmt.Errorf("keyring record of share %s is %d bytes, over %d: %w", r.Share.Short(), len(out), MaxRecord, ErrRecord)
	}
	return out, nil
}

// Open reads the record sealed in b, found in the file named name, under
// the keyring whose key is ring.
func Open(ring share.Key, name string, b []byte) (Record, error) {
	idText, ok := strings.CutSuffix(filepath.Base(name), Ext)
	if !ok {
		return Record{}, fmt.Errorf("%s is not a record (no %s): %w", name, Ext, ErrRecord)
	}
	id, err := share.ParseID(idText)
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w: %w", name, ErrRecord, err)
	}
	if len(b) > MaxRecord {
		return Record{}, fmt.Errorf("%s is %d bytes, over %d: %w", name, len(b), MaxRecord, ErrRecord)
	}
	if len(b) < 1+chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead || b[0] != version {
		return Record{}, fmt.Errorf("%s is cut short or from a newer version: %w", name, ErrRecord)
	}
	aead, err := recordAEAD(ring)
	if err != nil {
		return Record{}, err
	}
	nonce := b[1 : 1+chacha20poly1305.NonceSizeX]
	plain, err := aead.Open(nil, nonce, b[1+len(nonce):], []byte(adPrefix+id.String()))
	if err != nil {
		return Record{}, fmt.Errorf("%s does not open under this keyring (another keyring's, renamed, or tampered with): %w", name, ErrRecord)
	}
	var j recordJSON
	if err := json.Unmarshal(plain, &j); err != nil {
		return Record{}, fmt.Errorf("%s: %w: %w", name, ErrRecord, err)
	}
	r := Record{Name: j.Name}
	if r.Key, err = share.ParseKey(j.Key); err != nil {
		return Record{}, fmt.Errorf("%s: key: %w: %w", name, ErrRecord, err)
	}
	if r.From, err = identity.ParseDeviceID(j.From); err != nil {
		return Record{}, fmt.Errorf("%s: from: %w: %w", name, ErrRecord, err)
	}
	if r.Share, err = share.ParseID(j.Share); err != nil || r.Share != id {
		return Record{}, fmt.Errorf("%s: the record names another share: %w", name, ErrRecord)
	}
	if err := r.check(); err != nil {
		return Record{}, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}

// check is what every record must satisfy: its key is the share's, and its
// name is one folder name.
func (r Record) check() error {
	if r.Key.ID() != r.Share {
		return fmt.Errorf("the key is of share %s, not %s: %w", r.Key.ID().Short(), r.Share.Short(), ErrRecord)
	}
	if !ValidName(r.Name) {
		return fmt.Errorf("share name %q is not one folder name: %w", r.Name, ErrRecord)
	}
	return nil
}

// ValidName reports whether name can be the last element of a followed
// share's folder: one local path element, not hidden, no separators.
func ValidName(name string) bool {
	return name != "" && len(name) <= maxNameLen && filepath.IsLocal(name) &&
		!strings.ContainsAny(name, `/\:`) && !strings.HasPrefix(name, ".") && name == strings.TrimSpace(name)
}

func recordAEAD(ring share.Key) (cipher.AEAD, error) {
	rk, ok := ring.ReadKey()
	if !ok {
		return nil, fmt.Errorf("the keyring key is at %s access and cannot read records: %w", ring.Level(), ErrRecord)
	}
	id := ring.ID()
	k, err := hkdf.Key(sha256.New, rk[:], id[:], sealInfo, chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	return chacha20poly1305.NewX(k)
}
