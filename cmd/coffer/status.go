package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/server"
)

// binaryVersion is the module version and VCS revision the binary was
// built from, as `coffer version` and GetStatus report it.
func binaryVersion() string {
	version := "(devel)"
	if bi, ok := debugBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				version += " " + s.Value
			}
		}
	}
	return version
}

// auditMetrics writes the trail's commit counters for /metrics.
func auditMetrics(trail *audit.Writer) func(io.Writer) {
	return func(w io.Writer) {
		st := trail.Stats()
		failed := 0
		if st.Failed {
			failed = 1
		}
		var last float64
		if !st.LastCommit.IsZero() {
			last = float64(st.LastCommit.UnixNano()) / 1e9
		}
		fmt.Fprintf(w, "coffer_audit_records_total %d\ncoffer_audit_fsyncs_total %d\ncoffer_audit_writes_total %d\ncoffer_audit_digests_total %d\ncoffer_audit_queue_depth %d\ncoffer_audit_failed %d\ncoffer_audit_last_commit_timestamp_seconds %.3f\n",
			st.Records, st.Syncs, st.Batches, st.Digests, st.QueueDepth, failed, last)
	}
}

func newStatusCmd() *cobra.Command {
	a := &adminClient{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print a running server's version, uptime, root, store, Regions, keys by state, caches, audit lag and last maintenance",
		Long: `Ask a running server for its state (CofferAdmin.GetStatus). The request is
signed with your AWS credentials like ` + "`coffer admin`" + `'s, and goes to --endpoint,
AWS_ENDPOINT_URL_KMS or the default listen address; the caller needs
coffer:GetStatus. Key counts are those of the caller's account.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st server.StatusOutput
			if err := a.call(cmd.Context(), "GetStatus", struct{}{}, &st); err != nil {
				return err
			}
			if asJSON {
				out, _ := json.MarshalIndent(st, "", "  ")
				_, err := fmt.Fprintln(cmd.OutOrStdout(), string(out))
				return err
			}
			return printStatus(cmd.OutOrStdout(), &st)
		},
	}
	f := cmd.Flags()
	f.StringVar(&a.endpoint, "endpoint", "", "server URL (default $AWS_ENDPOINT_URL_KMS)")
	f.StringVar(&a.region, "region", "", "region (default from the AWS configuration)")
	f.BoolVar(&asJSON, "json", false, "print GetStatus's JSON answer")
	return cmd
}

func printStatus(out io.Writer, st *server.StatusOutput) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "version\t%s\n", st.Version)
	fmt.Fprintf(w, "uptime\t%s (since %s)\n", (time.Duration(st.UptimeSeconds) * time.Second).String(), st.Started.Format(time.RFC3339))
	fmt.Fprintf(w, "root of trust\t%s\n", st.Root)
	fmt.Fprintf(w, "store\t%s\n", st.Store)
	fmt.Fprintf(w, "regions\t%s\n", strings.Join(st.Regions, " "))
	states := slices.Sorted(maps.Keys(st.KeysByState))
	var keys []string
	for _, s := range states {
		keys = append(keys, fmt.Sprintf("%s=%d", s, st.KeysByState[s]))
	}
	if len(keys) == 0 {
		keys = []string{"none"}
	}
	fmt.Fprintf(w, "keys\t%s\n", strings.Join(keys, " "))
	for _, c := range st.Caches {
		ratio := "-"
		if n := c.Hits + c.Misses; n > 0 {
			ratio = fmt.Sprintf("%.1f%%", 100*float64(c.Hits)/float64(n))
		}
		fmt.Fprintf(w, "cache %s\t%d entries, hit ratio %s (%d hits, %d misses)\n", c.Cache, c.Entries, ratio, c.Hits, c.Misses)
	}
	switch a := st.Audit; {
	case a == nil:
		fmt.Fprintf(w, "audit\toff\n")
	default:
		last := "none since start"
		if a.LastCommit != nil {
			last = a.LastCommit.Format(time.RFC3339Nano)
		}
		state := "ok"
		if a.Failed {
			state = "FAILED"
		}
		fmt.Fprintf(w, "audit\t%s, queue depth %d, %d records, last commit %s\n", state, a.QueueDepth, a.Records, last)
	}
	if m := st.LastMaintenance; m != nil {
		res := fmt.Sprintf("rotated %d, deleted %d", m.Rotated, m.Deleted)
		if m.Error != "" {
			res = "failed: " + m.Error
		}
		fmt.Fprintf(w, "last maintenance\t%s (%.3fs): %s\n", m.Started.Format(time.RFC3339), m.Duration, res)
	} else {
		fmt.Fprintf(w, "last maintenance\tnone since start\n")
	}
	return w.Flush()
}

// storeKind names the store serve opens, for GetStatus.
func storeKind(o serveOptions) string {
	if o.dev {
		return "memory"
	}
	return o.store.kind
}
