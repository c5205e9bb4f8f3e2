package kms

import (
	"context"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/keystore"
)

// StatusOutput is what the service knows of itself, for `coffer status`:
// the server adds its own parts (version, uptime, audit lag).
type StatusOutput struct {
	Region  string
	Regions []string
	// KeysByState counts the caller's account's keys in this Region by
	// KeyState.
	KeysByState     map[string]int
	Caches          []CacheStat
	LastMaintenance *MaintenanceRun `json:",omitempty"` // nil: none since start
}

// MaintenanceRun describes one RunMaintenance.
type MaintenanceRun struct {
	Started  time.Time
	Duration float64 // seconds
	Rotated  int
	Deleted  int
	Error    string `json:",omitempty"`
}

// lastMaintenance remembers the last RunMaintenance, for status.
type lastMaintenance struct {
	mu  sync.Mutex
	run *MaintenanceRun
}

func (l *lastMaintenance) note(start time.Time, rotated, deleted *int, err *error) {
	r := &MaintenanceRun{Started: start.UTC(), Duration: time.Since(start).Seconds(), Rotated: *rotated, Deleted: *deleted}
	if *err != nil {
		r.Error = (*err).Error()
	}
	l.mu.Lock()
	l.run = r
	l.mu.Unlock()
}

func (l *lastMaintenance) last() *MaintenanceRun {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.run == nil {
		return nil
	}
	r := *l.run
	return &r
}

// GetStatus reports the service's state to an operator allowed
// coffer:GetStatus. The keys by state are counted from the caller's
// account's entries of the keys-by-account index (keyindex.go), one small
// entry a key of that account and no decode; until the index is built (the
// first maintenance run of a store from before it) from a scan of every
// key of the Region, as before. It fills no cache; it is not for a
// monitoring loop (use /metrics).
func (s *Service) GetStatus(ctx context.Context, c *Caller, _ *Empty) (*StatusOutput, error) {
	if err := s.authorizeIdentity(ctx, c, opGetStatus.Action, "*"); err != nil {
		return nil, err
	}
	out := &StatusOutput{Region: s.region, Regions: []string{s.region}, Caches: s.CacheStats(), LastMaintenance: s.maint.last()}
	err := s.store.View(ctx, func(tx keystore.Tx) error {
		var err error
		out.KeysByState, err = s.keysByState(tx, c.Account)
		return err
	})
	if err != nil {
		return nil, internal(err)
	}
	return out, nil
}

// keysByState counts account's keys in the Region by state.
func (s *Service) keysByState(tx keystore.Tx, account string) (map[string]int, error) {
	counts := map[string]int{}
	built, err := s.accountIndexBuilt(tx)
	if err != nil {
		return nil, err
	}
	if built {
		err := tx.Scan(bucketKeysByAccount, accountIndexName(account, ""), "", func(_ string, state []byte) bool {
			counts[string(state)]++
			return true
		})
		return counts, err
	}
	err = tx.Scan(bucketKeys, "", "", func(id string, raw []byte) bool {
		r, err := decodeKey(id, raw)
		if err == nil && r.Account == account {
			counts[string(r.State)]++
		}
		return true
	})
	return counts, err
}
