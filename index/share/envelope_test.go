package share

import (
	"errors"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/record"
)

func TestSealCheck(t *testing.T) {
	rw := FromSecret(fixedSecret())
	ro, _ := rw.ReadOnly()
	enc, _ := rw.Encrypted()
	other := FromSecret(Secret{1})
	r := record.Record{Path: "a/b", Kind: record.Dir, Mode: 0o755, ModTime: time.Unix(1, 0).UTC(),
		Version: record.Vector{{Device: 9, Value: 1}}, ModifiedBy: 9}

	e, err := rw.Seal(r)
	if err != nil {
		t.Fatal(err)
	}
	if e.Key() != enc.PathKey("a/b") {
		t.Errorf("sealed under the wrong tree key")
	}
	for _, k := range []Key{rw, ro} {
		if got, err := k.Check(e); err != nil || got.Path != r.Path {
			t.Errorf("%v key: Check = %v, %v", k.Level(), got.Path, err)
		}
	}
	if got, err := enc.Check(e); err != nil || got.Path != "" {
		t.Errorf("encrypted key: Check = %q, %v; want only the signature checked", got.Path, err)
	}
	for _, k := range []Key{ro, enc} {
		if _, err := k.Seal(r); !errors.Is(err, ErrLevel) {
			t.Errorf("%v key sealed a record: %v", k.Level(), err)
		}
	}
	if _, err := other.Check(e); !errors.Is(err, record.ErrBadSignature) {
		t.Errorf("another share accepted the envelope: %v", err)
	}
	// A writer filing a record under another path's key is caught by
	// readers; an encrypted relay cannot tell, which is the design.
	priv, _ := rw.Signer()
	misfiled, err := record.Seal(r, rw.PathKey("c"), priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.Check(misfiled); !errors.Is(err, record.ErrCorrupt) {
		t.Errorf("misfiled record: Check = %v, want ErrCorrupt", err)
	}
	if _, err := (Key{}).Check(e); !errors.Is(err, ErrLevel) {
		t.Errorf("zero key: Check = %v", err)
	}
}
