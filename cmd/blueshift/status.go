package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/daemon"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON, needed bool
	var wo watchOptions
	c := &cobra.Command{
		Use:   "status [SHARE]",
		Short: "Show whether each share is in sync, what is still needed, and the peers",
		Long: "Show per share: in sync or not, items and bytes still needed, the rate and an ETA,\n" +
			"connected peers, conflicts and errors; and per peer: connected, address, bytes. --json\n" +
			"prints the same for scripts; --needed adds the files not in sync and why.\n" +
			"--watch draws live progress bars until interrupted (with --json: one JSON object per\n" +
			"update); --until-synced exits 0 once every share is in sync, 1 at --timeout or at once\n" +
			"when a share cannot get there (paused, stopped, disk full, refused).",
		Args: maxArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			ref := ""
			if len(args) == 1 {
				ref = clean(args[0])
			}
			if wo.untilSynced {
				wo.watch = true
			}
			if wo.timeout < 0 {
				return usageError{fmt.Errorf("status: --timeout %s is negative", wo.timeout)}
			}
			cl, err := daemon.NewClient(home)
			if errors.Is(err, daemon.ErrNotRunning) {
				if wo.watch {
					return fmt.Errorf("status --watch: %w: start it with `blueshift run`", err)
				}
				st, err := offlineStatus(home)
				if err != nil {
					return err
				}
				return printStatus(c.OutOrStdout(), filterShares(st, ref), asJSON, false)
			}
			if err != nil {
				return err
			}
			if wo.watch {
				ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt)
				defer stop()
				wo.asJSON = asJSON
				return watchStatus(ctx, cl, ref, wo, c.OutOrStdout())
			}
			st, err := cl.Status(c.Context())
			if err != nil {
				return err
			}
			st = filterShares(st, ref)
			if ref != "" && len(st.Shares) == 0 {
				return fmt.Errorf("status: no share %q (`blueshift share list` shows the shares)", ref)
			}
			if !needed {
				return printStatus(c.OutOrStdout(), st, asJSON, true)
			}
			return printStatusNeeded(c, cl, st, asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	c.Flags().BoolVar(&needed, "needed", false, "also list each share's files not in sync, and why")
	c.Flags().BoolVar(&wo.watch, "watch", false, "draw live progress until interrupted")
	c.Flags().BoolVar(&wo.untilSynced, "until-synced", false, "watch until every share is in sync, then exit 0")
	c.Flags().DurationVar(&wo.timeout, "timeout", 0, "with --watch or --until-synced: give up after this long (exit 1); 0: never")
	return c
}

// StatusNeeded is what `status --needed --json` prints.
type StatusNeeded struct {
	daemon.Status
	Needed []daemon.Needed `json:"needed"`
}

func printStatusNeeded(c *cobra.Command, cl *daemon.Client, st daemon.Status, asJSON bool) error {
	out := StatusNeeded{Status: st, Needed: []daemon.Needed{}}
	for _, s := range st.Shares {
		if !s.Running || s.Vault != nil {
			continue // an encrypted member's share has no files here
		}
		n, err := cl.Needed(c.Context(), s.ID)
		if err != nil {
			return apiErr("status --needed", err)
		}
		out.Needed = append(out.Needed, n)
	}
	if asJSON {
		return printJSON(c.OutOrStdout(), out)
	}
	if err := printStatus(c.OutOrStdout(), st, false, true); err != nil {
		return err
	}
	for i, n := range out.Needed {
		if len(n.Files) == 0 && n.LocalChanges == nil {
			continue
		}
		name := n.Share
		for _, s := range st.Shares {
			if s.ID == n.Share {
				name = s.Name
			}
		}
		fmt.Fprintf(c.OutOrStdout(), "\nneeded in %s:\n", name)
		if err := printNeeded(c.OutOrStdout(), out.Needed[i]); err != nil {
			return err
		}
		printLocalChanges(c.OutOrStdout(), name, n.LocalChanges)
	}
	return nil
}

// offlineStatus is what the configuration alone says.
func offlineStatus(home string) (daemon.Status, error) {
	id, err := identity.Load(home)
	if err != nil {
		return daemon.Status{}, err
	}
	cfg, err := daemon.LoadConfig(home)
	if err != nil {
		return daemon.Status{}, err
	}
	st := daemon.Status{Device: id.ID().String(), Name: cfg.Device.Name, Shares: []daemon.ShareStatus{}, Peers: []daemon.PeerStatus{}, Refused: []daemon.Refused{}}
	for _, s := range cfg.Shares {
		ss := daemon.ShareStatus{ID: s.ID, Name: s.Name, Path: s.Path, Errors: []string{"the daemon is not running"}, Peers: []string{}, Members: s.Peers}
		if k, err := share.ParseKey(s.Key); err == nil {
			ss.Access = k.Level().String()
		}
		if ss.Join = daemon.JoinStatusOf(s); ss.Join != nil && ss.Join.Refused != "" {
			ss.Errors = append(ss.Errors, "device "+s.JoinFrom+" refused the invitation this share was joined with: "+ss.Join.Refused)
		}
		st.Shares = append(st.Shares, ss)
	}
	for _, p := range cfg.Peers {
		st.Peers = append(st.Peers, daemon.PeerStatus{ID: p.ID, Name: p.Name})
	}
	return st, nil
}

func filterShares(st daemon.Status, ref string) daemon.Status {
	if ref == "" {
		return st
	}
	var keep []daemon.ShareStatus
	for _, s := range st.Shares {
		if s.ID == ref || s.Name == ref {
			keep = append(keep, s)
		}
	}
	st.Shares = keep
	return st
}

func printStatus(w io.Writer, st daemon.Status, asJSON, running bool) error {
	if asJSON {
		return printJSON(w, st)
	}
	fmt.Fprintf(w, "device %s (%s)\n", st.Device, st.Name)
	if running {
		fmt.Fprintf(w, "listening on %s\n", st.Listen)
		printDHT(w, st.DHT)
	} else {
		fmt.Fprintln(w, "daemon not running (start it with `blueshift run`)")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSHARE\tSTATE\tNEED\tRATE\tETA\tRECORDS\tPEERS\tCONFLICTS\tPATH")
	for _, s := range st.Shares {
		state := "syncing"
		switch {
		case s.Paused:
			state = "paused"
		case !running || !s.Running:
			state = "stopped"
		case s.Join != nil && s.Join.Refused != "":
			state = "refused"
		case s.Join != nil:
			state = "joining"
		case s.Vault != nil:
			state = "sealed"
		case s.InSync:
			state = "in sync"
		case s.DiskFull != nil:
			state = "disk full"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d items, %s\t%s/s\t%s\t%d\t%d/%d\t%d\t%s\n", s.Name, state, s.NeedItems, size(s.NeedBytes),
			size(int64(s.RateIn)), eta(s), s.Records, len(s.Peers), len(s.Members), s.Conflicts, s.Path)
	}
	tw.Flush()
	for _, s := range st.Shares {
		for _, e := range s.Errors {
			fmt.Fprintf(w, "  %s: %s\n", s.Name, e)
		}
		if lc := s.LocalChanges; lc != nil {
			fmt.Fprintf(w, "  %s: %d local changes, not shared (`blueshift revert %s` puts the share's version back): %s\n", s.Name, lc.Count, s.Name, localPaths(lc))
		}
		printVault(w, s)
		if n := len(s.MembershipRefused); n > 0 {
			fmt.Fprintf(w, "  %s: %d membership changes or records refused, last: %s\n", s.Name, n, s.MembershipRefused[n-1])
		}
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nPEER\tNAME\tCONNECTED\tADDRESS\tREACHED\tIN\tOUT\tRATE IN\tRATE OUT")
	for _, p := range st.Peers {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\t%s\t%s/s\t%s/s\n", identityAbbrev(p.ID), p.Name, p.Connected, p.Address, reachedText(p),
			size(p.BytesIn), size(p.BytesOut), size(int64(p.RateIn)), size(int64(p.RateOut)))
	}
	tw.Flush()
	for _, r := range st.Refused {
		fmt.Fprintf(w, "refused %s from %s at %s: %s\n", identityAbbrev(r.ID), r.Addr, r.Time.Local().Format(time.TimeOnly), r.Reason)
	}
	return nil
}

func identityAbbrev(id string) string {
	if i := strings.IndexByte(id, '-'); i > 0 {
		return id[:i]
	}
	return id
}

// localPaths lists a few local changes for the one status line.
func localPaths(lc *daemon.LocalChanges) string {
	var ps []string
	for i, c := range lc.Paths {
		if i == 5 {
			ps = append(ps, fmt.Sprintf("and %d more (--json lists them)", lc.Count-5))
			break
		}
		ps = append(ps, string(c.Path)+" ("+c.What+")")
	}
	return strings.Join(ps, ", ")
}

// printVault prints, for an encrypted member's share, what it keeps and
// who pushed it; for a reader's share, what it last took from each
// encrypted member.
func printVault(w io.Writer, s daemon.ShareStatus) {
	if v := s.Vault; v != nil {
		fmt.Fprintf(w, "  %s: encrypted member: keeps %d sealed items (%s) and %d sealed blocks (%s), generation %d\n",
			s.Name, v.Items, size(v.ItemBytes), v.Blocks, size(v.BlockBytes), v.Generation)
		for _, p := range v.Pushers {
			last := "never recorded"
			if p.LastPush != nil {
				last = p.LastPush.Local().Format(time.DateTime)
			}
			fmt.Fprintf(w, "  %s: pushed by %s: %d items, last push %s\n", s.Name, nameAndID(p.Name, p.ID), p.Items, last)
		}
	}
	for _, p := range s.VaultPulls {
		conn := "not connected"
		if p.Connected {
			conn = "connected"
		}
		took := "nothing taken yet"
		if p.Pulled != nil {
			took = fmt.Sprintf("took %d records at %s (%d in all)", p.Items, p.Pulled.Local().Format(time.DateTime), p.Total)
		}
		fmt.Fprintf(w, "  %s: from encrypted member %s, %s: %s, at its generation %d, checked %s\n",
			s.Name, nameAndID(p.Name, p.ID), conn, took, p.Generation, p.Checked.Local().Format(time.TimeOnly))
		if p.Locked > 0 {
			fmt.Fprintf(w, "  %s: %d sealed records on %s are under a key epoch this device lacks\n", s.Name, p.Locked, p.Name)
		}
	}
}

// nameAndID is "name (ABBREV)", or "ABBREV" when the name is not known.
func nameAndID(name, id string) string {
	if a := identityAbbrev(id); name != "" && name != a {
		return name + " (" + a + ")"
	}
	return identityAbbrev(id)
}
