package index

import (
	"time"

	"github.com/blueshift-sync/blueshift/index/block"
)

func blockHash(b []byte) block.Hash { return block.Sum(b) }

func nowFunc() time.Time { return time.Now() }

func sinceSeconds(t time.Time) float64 { return time.Since(t).Seconds() }
