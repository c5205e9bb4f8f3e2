package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/kms"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify, query and follow the audit trail"}
	var archiveDir string
	verify := &cobra.Command{
		Use:   "verify [DIR...]",
		Short: "Check the hash chain and every digest signature; name the first bad record",
		Long: `Check the hash chain and every digest signature of the trail in DIR, against its
anchor, and name the first bad record. When segments were archived (coffer audit
archive), the trail is checked from the first record kept, linked to the last
archived one as the signed manifest records; --archive DIR also checks the archived
segments (their hashes and their chain up to where the trail goes on).

Several nodes on one PostgreSQL database each keep their own trail. Name several
DIRs, or a directory of trails (or of the nodes' data directories, whose audit/
subdirectories are the trails): each trail is checked by itself, against its own
signing key, and reported under its name; the command fails if any does not verify.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"coffer-data/audit"}
			}
			if len(args) == 1 && audit.IsTrail(args[0]) {
				return verifyTrail(cmd.OutOrStdout(), args[0], archiveDir)
			}
			dirs, err := audit.Trails(args...)
			if err != nil {
				return err
			}
			if len(dirs) == 1 {
				return verifyTrail(cmd.OutOrStdout(), dirs[0], archiveDir)
			}
			if archiveDir != "" {
				return errors.New("--archive checks the archive of one trail: name that trail alone")
			}
			w := cmd.OutOrStdout()
			reps, err := audit.VerifyTrails(dirs)
			var broken []string
			for _, tr := range reps {
				fmt.Fprintf(w, "trail %s:\n", tr.Dir)
				printVerifyReport(indent{w}, tr.Dir, tr.Report, tr.Err)
				if tr.Err != nil {
					fmt.Fprintf(w, "  FAILED: %v\n", tr.Err)
					broken = append(broken, tr.Dir)
				}
			}
			if err != nil {
				return fmt.Errorf("%d of %d audit trails do not verify: %s", len(broken), len(dirs), strings.Join(broken, ", "))
			}
			fmt.Fprintf(w, "all %d trails verify\n", len(dirs))
			return nil
		},
	}
	verify.Flags().StringVar(&archiveDir, "archive", "", "also verify the archived segments in this directory")
	var f audit.Filter
	var since, until string
	var dirs []string
	query := &cobra.Command{
		Use:   "query [DIR...]",
		Short: "Print the records that match, one JSON object per line",
		Long: `Print the records of the trail that match, one JSON object per line, in trail order.

Several nodes on one PostgreSQL database each keep their own trail. Name several
trails (DIR arguments or --dir given more than once), or a directory of trails (or of
the nodes' data directories): the records of all of them are merged in time order
(eventTime; for equal times, the trails in the order named), and each record gets a
member "trail" naming the trail it came from.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if f.Since, err = parseWhen(since); err != nil {
				return err
			}
			if f.Until, err = parseWhen(until); err != nil {
				return err
			}
			paths := args
			if len(paths) == 0 || cmd.Flags().Changed("dir") {
				paths = append(slices.Clone(dirs), args...)
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			if len(paths) == 1 && audit.IsTrail(paths[0]) {
				return audit.Query(paths[0], f, func(r *audit.Record) error { return enc.Encode(r) })
			}
			trails, err := audit.Trails(paths...)
			if err != nil {
				return err
			}
			if len(trails) == 1 {
				return audit.Query(trails[0], f, func(r *audit.Record) error { return enc.Encode(r) })
			}
			return audit.QueryTrails(trails, f, func(i int, r *audit.Record) error {
				return enc.Encode(trailRecord{Trail: trails[i], Record: r})
			})
		},
	}
	query.Flags().StringArrayVar(&dirs, "dir", []string{"coffer-data/audit"}, "audit directory (a trail, or a directory of trails); give it again for several")
	query.Flags().StringVar(&f.EventName, "event-name", "", "operation, e.g. Decrypt")
	query.Flags().StringVar(&f.KeyID, "key-id", "", "key ID or ARN")
	query.Flags().StringVar(&since, "since", "", "RFC 3339 time or a duration ago, e.g. 1h")
	query.Flags().StringVar(&until, "until", "", "RFC 3339 time or a duration ago")
	var tailDir string
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Follow new records as they are written",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			enc := json.NewEncoder(cmd.OutOrStdout())
			return audit.Tail(cmd.Context(), tailDir, func(r *audit.Record) error { return enc.Encode(r) })
		},
	}
	tail.Flags().StringVar(&tailDir, "dir", "coffer-data/audit", "audit directory")
	cmd.AddCommand(verify, query, tail, newAcknowledgeGapCmd(), newArchiveCmd())
	return cmd
}

// verifyTrail verifies the trail in dir (and the archive of its segments
// in archiveDir, when set), writing its report to w.
func verifyTrail(w io.Writer, dir, archiveDir string) error {
	pub, err := audit.ReadPublicKey(dir)
	if err != nil {
		return fmt.Errorf("the audit signing public key (%s): %w", audit.PublicKeyFile, err)
	}
	rep, err := audit.Verify(dir, pub)
	printVerifyReport(w, dir, rep, err)
	if err != nil {
		return err
	}
	if archiveDir != "" {
		m, arep, err := audit.VerifyArchive(dir, archiveDir, pub)
		switch {
		case err != nil && arep != nil && arep.Bad != nil:
			fmt.Fprintf(w, "ARCHIVE BROKEN: first bad record: %s line %d, seq %d: %s\n", arep.Bad.File, arep.Bad.Line, arep.Bad.Seq, arep.Bad.Reason)
			return err
		case err != nil:
			return err
		case m == nil:
			fmt.Fprintln(w, "archive: nothing was archived")
		default:
			fmt.Fprintf(w, "archive OK: %d records in %d segments in %s, %d signed digests, chained to seq %d\n", arep.Records, len(m.Segments), archiveDir, arep.Digests, m.FirstSeq)
		}
	}
	return nil
}

// printVerifyReport writes what Verify found in the trail in dir: the
// first bad record when err is set, else the summary.
func printVerifyReport(w io.Writer, dir string, rep *audit.VerifyReport, err error) {
	if err != nil {
		if rep != nil && rep.Bad != nil {
			fmt.Fprintf(w, "BROKEN: first bad record: %s line %d, seq %d: %s\n", rep.Bad.File, rep.Bad.Line, rep.Bad.Seq, rep.Bad.Reason)
		}
		return
	}
	fmt.Fprintf(w, "OK: %d records in %d files, %d signed digests, last seq %d, %d records after the last digest\n",
		rep.Records, rep.Files, rep.Digests, rep.LastSeq, rep.Unsealed)
	if !rep.SealedAt.IsZero() {
		fmt.Fprintf(w, "last sealed at %s\n", rep.SealedAt.UTC().Format(time.RFC3339))
	}
	if rep.TornTail {
		fmt.Fprintln(w, "the newest file ends in a torn line (a write cut short by a crash, never acknowledged)")
	}
	if a := rep.Anchor; a != nil {
		fmt.Fprintf(w, "anchored at seq %d (%s, written %s)\n", a.Seq, audit.AnchorPath(dir), a.Time)
		if a.Damaged != "" {
			fmt.Fprintf(w, "WARNING: the anchor's other %s (a write cut short by a crash, or the file changed): the anchor is the slot that verifies\n", a.Damaged)
		}
	} else {
		fmt.Fprintf(w, "WARNING: unanchored: %s is missing, so nothing shows whether records were cut off the end (a trail from before anchors; the next start anchors it)\n", audit.AnchorPath(dir))
	}
	for _, g := range rep.Gaps {
		fmt.Fprintf(w, "acknowledged gap: records %d..%d lost, by %q: %s\n", g.FirstSeq, g.LastSeq, g.By, g.Reason)
	}
	if m := rep.Archive; m != nil {
		fmt.Fprintf(w, "archived: records 1..%d in %d segments (manifest written %s); checked from seq %d\n", m.FirstSeq-1, len(m.Segments), m.Time, m.FirstSeq)
		if rep.ArchivedLeft > 0 {
			fmt.Fprintf(w, "%d archived segments are still in %s (an archive run stopped before removing them); run coffer audit archive again\n", rep.ArchivedLeft, dir)
		}
	}
}

// indent writes each line indented by two spaces (the report of one trail
// of several); every write is whole lines.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	s := strings.TrimSuffix(string(p), "\n")
	_, err := io.WriteString(i.w, "  "+strings.ReplaceAll(s, "\n", "\n  ")+"\n")
	return len(p), err
}

// trailRecord is a record of one of several trails, as query prints it:
// the record's members, then the trail it came from.
type trailRecord struct {
	Trail string
	*audit.Record
}

func (t trailRecord) MarshalJSON() ([]byte, error) {
	raw, err := json.Marshal(t.Record)
	if err != nil {
		return nil, err
	}
	name, _ := json.Marshal(t.Trail)
	raw = raw[:len(raw)-1] // the closing brace
	return append(append(append(raw, `,"trail":`...), name...), '}'), nil
}

// newAcknowledgeGapCmd records, with the server stopped, that records the
// anchor says were written are lost, so that serve starts again.
func newAcknowledgeGapCmd() *cobra.Command {
	var dataDir, reason, by string
	var r rootOptions
	cmd := &cobra.Command{
		Use:   "acknowledge-gap --reason TEXT",
		Short: "Record, signed, that records missing from the trail are lost, so that serve starts (server stopped)",
		Long: `When the trail ends before its anchor (a file deleted, the tail cut), serve refuses to
start and verify names the missing records. Restore them from a backup if you can; if
they are lost, this appends a signed gap record naming them, the reason and who
acknowledged it. Verify then accepts the gap and reports it, and serve starts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if by == "" {
				if u, err := user.Current(); err == nil {
					by = u.Username
				}
			}
			if reason == "" || by == "" {
				return errors.New("--reason and --by (default: the current user) are required")
			}
			if _, err := os.Stat(dataDir); err != nil {
				return err
			}
			root, _, err := openRoot(dataDir, r)
			if err != nil {
				return err
			}
			defer root.Close()
			dir := filepath.Join(dataDir, "audit")
			signer, err := kms.AuditSigner(cmd.Context(), root, filepath.Join(dataDir, kms.AuditKeyFile), dir)
			if err != nil {
				return err
			}
			g, err := audit.AcknowledgeGap(audit.Config{Dir: dir, Signer: signer}, reason, by)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "recorded: records %d..%d lost, acknowledged by %q: %s\n", g.FirstSeq, g.LastSeq, g.By, g.Reason)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "coffer-data", "data directory")
	cmd.Flags().StringVar(&reason, "reason", "", "why the records are lost (recorded and signed)")
	cmd.Flags().StringVar(&by, "by", "", "who acknowledges the loss (default: the current user)")
	r.flags(cmd, true)
	return cmd
}

// newArchiveCmd moves old sealed segments of the trail to a directory.
func newArchiveCmd() *cobra.Command {
	var dataDir, before, to string
	var r rootOptions
	cmd := &cobra.Command{
		Use:   "archive --before TIME --to DIR",
		Short: "Move sealed segments whose records are all older than TIME out of the trail, to DIR",
		Long: `Move out of <data-dir>/audit the oldest segments (files) whose records are all
older than --before, to the directory --to (a mounted volume; object stores are not
supported yet: copy the directory there). The trail must verify first. The newest
file, the anchored head and anything from the last signed digest on always stay, so
what is kept still verifies. Each segment is copied, synced and hashed before a
signed manifest (<data-dir>/audit/archived.json) records it and the chain state
where the trail now starts; only then are the originals removed. After a crash, run
it again: it finishes. It may run while the server runs.

verify checks the trail from the first record kept; verify --archive DIR also checks
the archived segments.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := time.Parse(time.RFC3339, before)
			if err != nil {
				return fmt.Errorf("--before must be an RFC 3339 time (2026-01-02T15:04:05Z): %w", err)
			}
			if to == "" {
				return errors.New("--to is required")
			}
			if _, err := os.Stat(dataDir); err != nil {
				return err
			}
			root, _, err := openRoot(dataDir, r)
			if err != nil {
				return err
			}
			defer root.Close()
			dir := filepath.Join(dataDir, "audit")
			signer, err := kms.AuditSigner(cmd.Context(), root, filepath.Join(dataDir, kms.AuditKeyFile), dir)
			if err != nil {
				return err
			}
			rep, err := audit.Archive(audit.ArchiveConfig{Dir: dir, To: to, Before: t, Signer: signer})
			if rep != nil {
				for _, s := range rep.Archived {
					fmt.Fprintf(cmd.OutOrStdout(), "archived %s (seq %d..%d, %d bytes, sha256 %s)\n", s.Name, s.FirstSeq, s.LastSeq, s.Size, s.SHA256)
				}
			}
			if err != nil {
				return err
			}
			if len(rep.Archived) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "nothing to archive before %s\n", t.UTC().Format(time.RFC3339))
			}
			if m := rep.Manifest; m != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "the trail now starts at seq %d; records 1..%d are archived in %d segments\n", m.FirstSeq, m.FirstSeq-1, len(m.Segments))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "coffer-data", "data directory")
	cmd.Flags().StringVar(&before, "before", "", "archive segments whose records are all older than this RFC 3339 time")
	cmd.Flags().StringVar(&to, "to", "", "directory to move the segments to")
	r.flags(cmd, true)
	return cmd
}

func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	return time.Parse(time.RFC3339, s)
}
