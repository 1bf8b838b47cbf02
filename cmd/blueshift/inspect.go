package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/zeebo/blake3"

	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/chunk"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/sync/engine"
)

// inspectKeyContext derives the fixed share key `inspect root` scans with.
// A record's envelope (and so the root) depends on the share key, the
// writing device and the version counters, so inspect fixes all three: the
// key is share.FromSecret(BLAKE3-derive-key(inspectKeyContext, "")), the
// device is inspectDevice and the clock reads the Unix epoch (every
// version counter is 1). Equal trees (same names, bytes, modes and mtimes)
// then give equal roots on every run and machine. Changing any of these
// changes every printed root.
const (
	inspectKeyContext = "blueshift 2026 inspect root fixed share secret v1"
	inspectDevice     = record.Device(1)
)

// newInspectCmd groups the verbs that look inside the index without a daemon.
func newInspectCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "inspect",
		Short: "Look inside files and folders the way the index sees them",
	}
	c.AddCommand(&cobra.Command{
		Use:   "chunks FILE",
		Short: "Print one JSON line per chunk of FILE: offset, length, hash",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return inspectChunks(c.Context(), args[0], c.OutOrStdout())
		},
	})
	c.AddCommand(&cobra.Command{
		Use:   "root DIR",
		Short: "Scan DIR into a throw-away index and print its Merkle root and record count",
		Long: "Scan DIR into a throw-away index (in a temporary folder, removed afterwards; nothing is\n" +
			"written inside DIR) and print {\"root\":HEX,\"records\":N,\"errors\":N}. The scan uses a fixed\n" +
			"share key, device and clock, so equal trees give equal roots on every run and machine.",
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return inspectRoot(c.Context(), args[0], c.OutOrStdout(), os.Stderr)
		},
	})
	return c
}

func inspectChunks(ctx context.Context, path string, out io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("inspect chunks: %w", err)
	}
	defer f.Close()
	sp, err := chunk.NewSplitter(chunk.DefaultParams())
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	type line struct {
		Offset int64  `json:"offset"`
		Length int    `json:"length"`
		Hash   string `json:"hash"`
	}
	err = sp.Split(ctx, f, func(c chunk.Chunk, _ []byte) error {
		return enc.Encode(line{Offset: c.Offset, Length: c.Length, Hash: c.Hash.String()})
	})
	if err != nil {
		return fmt.Errorf("inspect chunks of %q: %w", path, err)
	}
	return w.Flush()
}

// inspectKey returns the fixed share key of `inspect root`.
func inspectKey() share.Key {
	var s share.Secret
	blake3.DeriveKey(inspectKeyContext, nil, s[:])
	return share.FromSecret(s)
}

func inspectRoot(ctx context.Context, dir string, out, errOut io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		if err == nil {
			err = fmt.Errorf("not a folder")
		}
		return fmt.Errorf("inspect root %q: %w", dir, err)
	}
	tmp, err := os.MkdirTemp("", "blueshift-inspect-")
	if err != nil {
		return fmt.Errorf("inspect root: make a temporary index: %w", err)
	}
	defer os.RemoveAll(tmp)
	db, err := index.Open(tmp, index.Options{Now: func() time.Time { return time.Unix(0, 0) }})
	if err != nil {
		return fmt.Errorf("inspect root: %w", err)
	}
	defer db.Close()
	sh, err := db.Share(inspectKey(), dir, inspectDevice)
	if err != nil {
		return fmt.Errorf("inspect root: %w", err)
	}
	opts := index.ScanOptions{}
	if isTerminal(errOut) {
		opts.Progress = func(p index.Progress) {
			fmt.Fprintf(errOut, "\rscanning: %d paths, %d/%d files, %s/%s, %s/s   ",
				p.Walked, p.FilesDone, p.FilesTotal, size(p.BytesDone), size(p.BytesTotal), size(int64(p.Rate)))
			if p.Done {
				fmt.Fprintln(errOut)
			}
		}
	}
	res, err := sh.Scan(ctx, opts)
	if err != nil {
		return fmt.Errorf("inspect root: %w", err)
	}
	for _, e := range res.Errors {
		fmt.Fprintln(errOut, "blueshift: skipped", e)
	}
	root, n, err := sh.TreeRoot()
	if err != nil {
		return fmt.Errorf("inspect root: %w", err)
	}
	return json.NewEncoder(out).Encode(struct {
		Root    string `json:"root"`
		Records uint64 `json:"records"`
		Errors  int    `json:"errors"`
	}{hex.EncodeToString(root[:]), n, len(res.Errors)})
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// size prints a byte count for people, as the daemon's messages do.
func size(n int64) string { return engine.SizeText(n) }
