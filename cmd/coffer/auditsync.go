package main

import (
	"fmt"
	"strings"
	"time"
)

// auditSync is --audit-sync, the audit trail's commit policy, named as
// PostgreSQL's synchronous_commit settings are: "commit" (a call's
// response waits for its record's fdatasync) or "interval:<d>" (it waits
// for the record's write into the trail file; an fdatasync runs every d).
// It is audit.Config's SyncInterval: 0 for commit.
type auditSync struct{ interval time.Duration }

const (
	auditSyncCommit   = "commit"
	auditSyncInterval = "interval:"
	// The interval's bounds: below a millisecond it is commit with extra
	// wake-ups; past a minute a power loss would lose more than any
	// operator expects of an audit trail.
	minAuditSyncInterval = time.Millisecond
	maxAuditSyncInterval = time.Minute
)

func (a *auditSync) String() string {
	if a.interval == 0 {
		return auditSyncCommit
	}
	return auditSyncInterval + a.interval.String()
}

func (a *auditSync) Set(s string) error {
	if s == auditSyncCommit {
		a.interval = 0
		return nil
	}
	rest, ok := strings.CutPrefix(s, auditSyncInterval)
	if !ok {
		return fmt.Errorf("want %s or %s<duration> (such as %s10ms), not %q", auditSyncCommit, auditSyncInterval, auditSyncInterval, s)
	}
	d, err := time.ParseDuration(rest)
	if err != nil {
		return fmt.Errorf("%q: %v", s, err)
	}
	if d < minAuditSyncInterval || d > maxAuditSyncInterval {
		return fmt.Errorf("%q: the interval must be from %v to %v", s, minAuditSyncInterval, maxAuditSyncInterval)
	}
	a.interval = d
	return nil
}

func (a *auditSync) Type() string { return "policy" }
