package daemon

import (
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/sync/vault"
)

// A reader's pulls from an encrypted member, as status shows them: a pull
// that takes records sets Items and Pulled and adds to Total; one that
// takes nothing moves only Checked, the generation and Locked; shares and
// members are kept apart.
func TestVaultPulls(t *testing.T) {
	var v vaultPulls
	id, other := share.ID{1}, share.ID{2}
	e1, e2 := identity.DeviceID{1}, identity.DeviceID{2}
	t0 := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	if got := v.of(id); len(got) != 0 {
		t.Fatalf("no pulls yet, got %+v", got)
	}
	v.record(id, e1, vault.Stats{Items: 4}, 10, t0)
	v.record(id, e1, vault.Stats{Locked: 2}, 11, t0.Add(time.Minute))
	v.record(id, e2, vault.Stats{Items: 1}, 7, t0)
	v.record(other, e1, vault.Stats{Items: 9}, 3, t0)
	got := v.of(id)
	if len(got) != 2 || got[0].ID > got[1].ID {
		t.Fatalf("pulls of one share: %+v", got)
	}
	p := got[0]
	if p.ID != e1.String() {
		p = got[1]
	}
	if p.Items != 4 || p.Total != 4 || p.Generation != 11 || p.Locked != 2 || p.Pulled == nil || !p.Pulled.Equal(t0) || !p.Checked.Equal(t0.Add(time.Minute)) {
		t.Fatalf("pull from e1: %+v", p)
	}
	v.record(id, e1, vault.Stats{Items: 3}, 12, t0.Add(2*time.Minute))
	for _, p := range v.of(id) {
		if p.ID == e1.String() && (p.Items != 3 || p.Total != 7 || p.Locked != 0 || !p.Pulled.Equal(t0.Add(2*time.Minute))) {
			t.Fatalf("after a second pull that took records: %+v", p)
		}
	}
	if got := v.of(other); len(got) != 1 || got[0].Total != 9 {
		t.Fatalf("the other share's pulls: %+v", got)
	}
}
