package engine

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/peer/wire"
)

// TestInterruptedPullResumes: a pull that stops part way keeps the blocks
// it received; after the receiver restarts, only the rest is fetched.
func TestInterruptedPullResumes(t *testing.T) {
	a, b := newPair(t)
	data := randBytes(8 << 20) // about 128 blocks: large enough for a resumable temp
	write(t, a, "big.bin", data)
	waitScanned(t, a)

	budget := &blockBudget{limit: 40}
	a.serveLimit = budget
	cut := link(t, a, b)
	deadline := time.Now().Add(15 * time.Second)
	for budget.refused.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the pull never ran out of budget (served %d)", budget.served.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // let the refused pull end and keep its temp
	cut()
	first := budget.served.Load()

	b.restart()
	after := &blockBudget{limit: 1 << 30}
	a.serveLimit = after
	link(t, a, b)
	waitConverged(t, a, b)
	expectFile(t, b, "big.bin", data)
	total := int64(len(mustRecord(t, a, "big.bin").Blocks))
	t.Logf("blocks: %d in all, %d served before the restart, %d after", total, first, after.served.Load())
	if after.served.Load() > total-first {
		t.Fatalf("after the restart %d blocks were fetched; %d had arrived before, so at most %d were needed",
			after.served.Load(), first, total-first)
	}
}

// blockBudget counts the blocks a device serves and refuses those past
// limit, as if the link had gone.
type blockBudget struct {
	limit   int64
	served  atomic.Int64
	refused atomic.Int64
}

// limiter serves blocks within a budget.
type limiter struct {
	*Session
	b *blockBudget
}

func (l limiter) HandleRequest(ctx context.Context, m wire.Message) (wire.Message, error) {
	if _, ok := m.(*wire.BlockRequest); ok {
		if l.b.served.Load() >= l.b.limit {
			l.b.refused.Add(1)
			return wire.Errorf(wire.CodeNotFound, "out of budget"), nil
		}
		l.b.served.Add(1)
	}
	return l.Session.HandleRequest(ctx, m)
}
