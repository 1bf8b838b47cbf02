package engine

import (
	"context"
	"fmt"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// BlockSource returns a block's plaintext by its hash from outside the
// share's connected members: an encrypted member's store, opened by
// sync/vault. The engine checks what it returns against the hash.
type BlockSource func(ctx context.Context, h block.Hash, size uint32) ([]byte, error)

type vaultKey struct {
	share share.ID
	from  identity.DeviceID
}

// Offer hands share id's puller records that did not come over a sync
// session (sealed records an encrypted member kept, opened by sync/vault),
// as if peer from had pushed them: each is checked as a pushed record is
// (the share key's signature, its own path's tree key, Access), records
// already held are skipped, and blocks neither held here nor by a
// connected member are asked of src, which stays in use for from's records
// (their retries too) until the next Offer from it replaces it.
func (e *Engine) Offer(ctx context.Context, id share.ID, from identity.DeviceID, envs []record.Envelope, src BlockSource) error {
	f := e.folder(id)
	if f == nil {
		return fmt.Errorf("offer records of share %s: %w", id.Short(), ErrUnknownShare)
	}
	e.vaults.Store(vaultKey{id, from}, src)
	var batch []incoming
	for _, env := range envs {
		if held, ok, err := f.idx.Envelope(env.Key()); err == nil && ok && held.Leaf() == env.Leaf() {
			continue
		}
		rec, err := f.idx.Check(env)
		if err != nil {
			f.log.Warn("refused a record an encrypted member kept", "peer", from.Abbrev(), "err", err)
			continue
		}
		if env.Sealed() || (f.cfg.Access != nil && !f.cfg.Access.MayWrite(from, rec)) {
			continue
		}
		batch = append(batch, incoming{env: env, rec: rec, from: from})
	}
	if len(batch) == 0 {
		return nil
	}
	return f.deliver(ctx, batch)
}

// ReadBlock returns block h of share id as this device holds it (its files
// and pull temps), checked against h: what sync/vault seals for encrypted
// members.
func (e *Engine) ReadBlock(id share.ID, h block.Hash, size uint32) ([]byte, bool) {
	f := e.folder(id)
	if f == nil {
		return nil, false
	}
	return f.readShared(h, size)
}

// fromVault asks the block source Offer left for from's records of f, if
// any, for block b; errMissingBlocks when there is none or it fails.
func (e *Engine) fromVault(ctx context.Context, f *folder, from identity.DeviceID, b record.BlockRef) ([]byte, error) {
	v, ok := e.vaults.Load(vaultKey{f.id, from})
	if !ok {
		return nil, errMissingBlocks
	}
	data, err := v.(BlockSource)(ctx, b.Hash, b.Size)
	if err != nil || block.Sum(data) != b.Hash {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		f.log.Debug("a block from an encrypted member", "peer", from.Abbrev(), "err", err)
		return nil, errMissingBlocks
	}
	f.act.recv.Add(int64(len(data)))
	return data, nil
}
