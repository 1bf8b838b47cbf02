package identity

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// KeyFile is the name of the key file in the home folder.
const KeyFile = "device.key"

// maxKeyFile bounds what Load reads: a PEM PKCS #8 Ed25519 key is ~120 bytes.
const maxKeyFile = 4 << 10

var (
	// ErrNoKey: the home folder has no key yet (run "blueshift init").
	ErrNoKey = errors.New("no device key")
	// ErrKeyExists: Create found a key and will not replace it.
	ErrKeyExists = errors.New("device key already exists")
	// ErrKeyPermissions: the key file is readable or writable by others.
	ErrKeyPermissions = errors.New("device key file is accessible by other users")
	// ErrBadKey: the key file is not a PEM PKCS #8 Ed25519 private key.
	ErrBadKey = errors.New("device key file is damaged")
	// ErrBadCertificate: a peer's certificate does not carry an Ed25519 key.
	ErrBadCertificate = errors.New("peer certificate is not a device certificate")
)

// Identity is a device's private key, its ID and its TLS certificate.
type Identity struct {
	key  ed25519.PrivateKey
	id   DeviceID
	cert tls.Certificate
}

// Generate makes a new identity in memory (tests, and Create).
func Generate() (*Identity, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate device key: %w", err)
	}
	return fromKey(priv)
}

// Create makes a new identity and stores its key in home/device.key with mode
// 0600. It never replaces an existing key (ErrKeyExists).
func Create(home string) (*Identity, error) {
	path := filepath.Join(home, KeyFile)
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("create home folder %q: %w", home, err)
	}
	id, err := Generate()
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(id.key)
	if err != nil {
		return nil, fmt.Errorf("encode device key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	// Write a temp file and link it into place: the key appears complete or
	// not at all, and Link fails if another key got there first.
	tmp, err := os.CreateTemp(home, ".device.key.tmp*")
	if err != nil {
		return nil, fmt.Errorf("create device key in %q: %w", home, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data) // CreateTemp made it 0600
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write device key %q: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create device key %q: %w (remove it only if you mean to become a new device)", path, ErrKeyExists)
		}
		return nil, fmt.Errorf("create device key %q: %w", path, err)
	}
	return id, nil
}

// Load reads the identity stored in home by Create.
func Load(home string) (*Identity, error) {
	path := filepath.Join(home, KeyFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load device key %q: %w (run \"blueshift init\" first)", path, ErrNoKey)
	}
	if err != nil {
		return nil, fmt.Errorf("load device key %q: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load device key %q: %w", path, err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("load device key %q: mode is %04o: %w; run \"chmod 600 %s\"", path, st.Mode().Perm(), ErrKeyPermissions, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("load device key %q: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("load device key %q: file is larger than %d bytes: %w", path, maxKeyFile, ErrBadKey)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("load device key %q: no PEM private key: %w", path, ErrBadKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load device key %q: %v: %w", path, err, ErrBadKey)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load device key %q: key is %T, not Ed25519: %w", path, k, ErrBadKey)
	}
	return fromKey(priv)
}

// ID returns the device ID.
func (id *Identity) ID() DeviceID { return id.id }

// PublicKey returns the device's public key.
func (id *Identity) PublicKey() ed25519.PublicKey {
	return id.key.Public().(ed25519.PublicKey)
}

// Sign signs msg with the device key (Ed25519, 64 bytes).
func (id *Identity) Sign(msg []byte) []byte { return ed25519.Sign(id.key, msg) }

// Certificate returns the self-signed TLS certificate made from the device
// key. Callers must not modify it.
func (id *Identity) Certificate() tls.Certificate { return id.cert }

// Verify reports whether sig is pub's signature of msg and pub belongs to
// device want.
func Verify(want DeviceID, pub ed25519.PublicKey, msg, sig []byte) bool {
	return len(pub) == ed25519.PublicKeySize && FromPublicKey(pub) == want && ed25519.Verify(pub, msg, sig)
}

// FromCertificate returns the device ID a peer's certificate names: the hash
// of its Ed25519 public key. Nothing else in the certificate (names, dates,
// issuer) is trusted; the TLS handshake has already proved that the peer holds
// the private key.
func FromCertificate(cert *x509.Certificate) (DeviceID, error) {
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return DeviceID{}, fmt.Errorf("certificate key is %T: %w", cert.PublicKey, ErrBadCertificate)
	}
	return FromPublicKey(pub), nil
}

func fromKey(priv ed25519.PrivateKey) (*Identity, error) {
	id := &Identity{key: priv, id: FromPublicKey(priv.Public().(ed25519.PublicKey))}
	cert, err := selfSigned(priv, id.id)
	if err != nil {
		return nil, err
	}
	id.cert = cert
	return id, nil
}

// selfSigned makes the device certificate. It is deterministic (serial from
// the ID, fixed dates, Ed25519 signatures are deterministic), so it need not be
// stored. Peers ignore its dates and names and check only its key.
func selfSigned(priv ed25519.PrivateKey, id DeviceID) (tls.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(id[:16]),
		Subject:               pkix.Name{CommonName: "blueshift " + id.String()},
		NotBefore:             time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, priv.Public(), crypto.Signer(priv))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("make device certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("make device certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}, nil
}
