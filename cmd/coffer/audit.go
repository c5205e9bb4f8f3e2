package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/kms"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify, query and follow the audit trail"}
	var archiveDir string
	verify := &cobra.Command{
		Use:   "verify [DIR]",
		Short: "Check the hash chain and every digest signature; name the first bad record",
		Long: `Check the hash chain and every digest signature of the trail in DIR, against its
anchor, and name the first bad record. When segments were archived (coffer audit
archive), the trail is checked from the first record kept, linked to the last
archived one as the signed manifest records; --archive DIR also checks the archived
segments (their hashes and their chain up to where the trail goes on).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "coffer-data/audit"
			if len(args) == 1 {
				dir = args[0]
			}
			pub, err := audit.ReadPublicKey(dir)
			if err != nil {
				return fmt.Errorf("the audit signing public key (%s): %w", audit.PublicKeyFile, err)
			}
			rep, err := audit.Verify(dir, pub)
			if err != nil {
				if rep != nil && rep.Bad != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "BROKEN: first bad record: %s line %d, seq %d: %s\n", rep.Bad.File, rep.Bad.Line, rep.Bad.Seq, rep.Bad.Reason)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "OK: %d records in %d files, %d signed digests, last seq %d, %d records after the last digest\n",
				rep.Records, rep.Files, rep.Digests, rep.LastSeq, rep.Unsealed)
			if !rep.SealedAt.IsZero() {
				fmt.Fprintf(cmd.OutOrStdout(), "last sealed at %s\n", rep.SealedAt.UTC().Format(time.RFC3339))
			}
			if rep.TornTail {
				fmt.Fprintln(cmd.OutOrStdout(), "the newest file ends in a torn line (a write cut short by a crash, never acknowledged)")
			}
			if a := rep.Anchor; a != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "anchored at seq %d (%s, written %s)\n", a.Seq, audit.AnchorPath(dir), a.Time)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "WARNING: unanchored: %s is missing, so nothing shows whether records were cut off the end (a trail from before anchors; the next start anchors it)\n", audit.AnchorPath(dir))
			}
			for _, g := range rep.Gaps {
				fmt.Fprintf(cmd.OutOrStdout(), "acknowledged gap: records %d..%d lost, by %q: %s\n", g.FirstSeq, g.LastSeq, g.By, g.Reason)
			}
			if m := rep.Archive; m != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "archived: records 1..%d in %d segments (manifest written %s); checked from seq %d\n", m.FirstSeq-1, len(m.Segments), m.Time, m.FirstSeq)
				if rep.ArchivedLeft > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "%d archived segments are still in %s (an archive run stopped before removing them); run coffer audit archive again\n", rep.ArchivedLeft, dir)
				}
			}
			if archiveDir != "" {
				m, arep, err := audit.VerifyArchive(dir, archiveDir, pub)
				switch {
				case err != nil && arep != nil && arep.Bad != nil:
					fmt.Fprintf(cmd.OutOrStdout(), "ARCHIVE BROKEN: first bad record: %s line %d, seq %d: %s\n", arep.Bad.File, arep.Bad.Line, arep.Bad.Seq, arep.Bad.Reason)
					return err
				case err != nil:
					return err
				case m == nil:
					fmt.Fprintln(cmd.OutOrStdout(), "archive: nothing was archived")
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "archive OK: %d records in %d segments in %s, %d signed digests, chained to seq %d\n", arep.Records, len(m.Segments), archiveDir, arep.Digests, m.FirstSeq)
				}
			}
			return nil
		},
	}
	verify.Flags().StringVar(&archiveDir, "archive", "", "also verify the archived segments in this directory")
	var f audit.Filter
	var since, until, dir string
	query := &cobra.Command{
		Use:   "query",
		Short: "Print the records that match, one JSON object per line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if f.Since, err = parseWhen(since); err != nil {
				return err
			}
			if f.Until, err = parseWhen(until); err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			return audit.Query(dir, f, func(r *audit.Record) error { return enc.Encode(r) })
		},
	}
	query.Flags().StringVar(&dir, "dir", "coffer-data/audit", "audit directory")
	query.Flags().StringVar(&f.EventName, "event-name", "", "operation, e.g. Decrypt")
	query.Flags().StringVar(&f.KeyID, "key-id", "", "key ID or ARN")
	query.Flags().StringVar(&since, "since", "", "RFC 3339 time or a duration ago, e.g. 1h")
	query.Flags().StringVar(&until, "until", "", "RFC 3339 time or a duration ago")
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Follow new records as they are written",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			enc := json.NewEncoder(cmd.OutOrStdout())
			return audit.Tail(cmd.Context(), dir, func(r *audit.Record) error { return enc.Encode(r) })
		},
	}
	tail.Flags().StringVar(&dir, "dir", "coffer-data/audit", "audit directory")
	cmd.AddCommand(verify, query, tail, newAcknowledgeGapCmd(), newArchiveCmd())
	return cmd
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
