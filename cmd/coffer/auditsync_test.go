package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestAuditSyncSetting: --audit-sync is a flag, COFFER_AUDIT_SYNC and a
// key of the configuration file like every other setting, "commit" by
// default; values that are not a policy are refused with the accepted forms.
func TestAuditSyncSetting(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		env, file  string
		want       time.Duration
		wantSource string
	}{
		{"default", nil, "", "", 0, fromDefault},
		{"flag", []string{"--audit-sync", "interval:10ms"}, "", "", 10 * time.Millisecond, fromFlag},
		{"flag commit over env", []string{"--audit-sync=commit"}, "interval:1s", "", 0, fromFlag},
		{"env", nil, "interval:250ms", "", 250 * time.Millisecond, fromEnv},
		{"file", nil, "", "audit-sync: interval:20ms\n", 20 * time.Millisecond, fromFile},
		{"file quoted", nil, "", "audit-sync: \"interval:1m\"\n", time.Minute, fromFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("COFFER_AUDIT_SYNC", tc.env)
			if tc.env == "" {
				unsetenv(t, "COFFER_AUDIT_SYNC")
			}
			args := tc.args
			if tc.file != "" {
				args = append(args, "--config", writeConfig(t, tc.file))
			}
			cmd := newServeCmd()
			if err := cmd.ParseFlags(args); err != nil {
				t.Fatal(err)
			}
			rc, err := resolveConfig(cmd)
			if err != nil {
				t.Fatal(err)
			}
			v := cmd.Flags().Lookup("audit-sync").Value.(*auditSync)
			if v.interval != tc.want || rc.source["audit-sync"] != tc.wantSource {
				t.Fatalf("%v from %s, want %v from %s", v, rc.source["audit-sync"], tc.want, tc.wantSource)
			}
		})
	}
	for _, bad := range []string{"", "interval", "interval:", "interval:0s", "interval:-1s", "interval:500us", "interval:2m", "interval:soon", "Commit", "off", "10ms"} {
		var a auditSync
		if err := a.Set(bad); err == nil {
			t.Errorf("--audit-sync=%q accepted as %v", bad, &a)
		}
	}
	cmd := newServeCmd()
	err := cmd.ParseFlags([]string{"--audit-sync", "always"})
	if err == nil || !strings.Contains(err.Error(), "want commit or interval:<duration>") {
		t.Fatalf("--audit-sync always: %v", err)
	}
}

func unsetenv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "")
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}
