package engine

import (
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// Access is what a share's membership says of records, beyond the share
// key's signature (the daemon answers from the share's membership log,
// index/members). MayWrite reports whether rec, received from peer from,
// was made by a device allowed to write it; a record refused here is
// dropped, nothing of it written, and the answerer notes and logs it.
// It is called once per received record and must be quick.
type Access interface {
	MayWrite(from identity.DeviceID, rec record.Record) bool
}
