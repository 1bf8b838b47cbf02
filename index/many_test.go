package index

import (
	"fmt"
	"testing"

	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
)

// TestManyReadsAnswerAsOneByOne: records and states read together through
// one iterator (envelopes, Prefetch) are what Envelope and LocalState read
// one by one, those stored and those not, in the order asked.
func TestManyReadsAnswerAsOneByOne(t *testing.T) {
	e := newEnv(t)
	var paths []record.Path
	for i := range 40 {
		p := fmt.Sprintf("d%d/f%02d", i%3, i)
		if i%4 != 3 { // every fourth is never written: not stored
			e.write(p, []byte(p))
		}
		paths = append(paths, record.Path(p))
	}
	e.scan()
	keys := make([]merkle.Key, len(paths))
	for i, p := range paths {
		keys[i] = e.sh.key.PathKey(string(p))
	}
	envs, ok, err := e.sh.envelopes(keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		want, wantOK, err := e.sh.Envelope(k)
		if err != nil {
			t.Fatal(err)
		}
		if ok[i] != wantOK || ok[i] && envs[i].Leaf() != want.Leaf() {
			t.Errorf("%s: read together %v, alone %v (or another envelope)", paths[i], ok[i], wantOK)
		}
	}

	// Prefetch fills recent with what the database holds, found or not.
	e.sh.recent = newRecent()
	if err := e.sh.Prefetch(keys, paths); err != nil {
		t.Fatal(err)
	}
	for i, p := range paths {
		st, stOK, hit := e.sh.recent.state(p)
		if !hit {
			t.Fatalf("%s: state not kept by Prefetch", p)
		}
		env, envOK, hit := e.sh.recent.envelope(keys[i])
		if !hit {
			t.Fatalf("%s: record not kept by Prefetch", p)
		}
		e.sh.recent = newRecent() // read the database itself
		wantSt, wantStOK, _ := e.sh.LocalState(p)
		wantEnv, wantEnvOK, _ := e.sh.Envelope(keys[i])
		if stOK != wantStOK || st.Size != wantSt.Size || st.ModTime != wantSt.ModTime || st.Inode != wantSt.Inode {
			t.Errorf("%s: prefetched state %+v (%v), stored %+v (%v)", p, st, stOK, wantSt, wantStOK)
		}
		if envOK != wantEnvOK || envOK && env.Leaf() != wantEnv.Leaf() {
			t.Errorf("%s: prefetched record %v, stored %v (or another envelope)", p, envOK, wantEnvOK)
		}
		if err := e.sh.Prefetch(keys, paths); err != nil {
			t.Fatal(err)
		}
	}
}
