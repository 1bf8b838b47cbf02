package index

import "github.com/blueshift-sync/blueshift/index/block"

func blockHash(b []byte) block.Hash { return block.Sum(b) }
