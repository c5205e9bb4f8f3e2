package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-kms/coffer/audit"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify, query and follow the audit trail"}
	verify := &cobra.Command{
		Use:   "verify [DIR]",
		Short: "Check the hash chain and every digest signature; name the first bad record",
		Args:  cobra.MaximumNArgs(1),
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
			return nil
		},
	}
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
	cmd.AddCommand(verify, query, tail)
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
