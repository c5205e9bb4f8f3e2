package kms

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/keystore"
)

// GetKeyLastUsage (botocore's current model): the last successful
// cryptographic operation on a key, its time, CloudTrail event ID and
// request ID, and the date tracking began. The server reports every
// successful call through RecordLastUsage; the last use of each key is
// kept in memory beside the usage counters and written to bucketLastUsage
// (one record per key ID, the newest use winning) by FlushUsage, so that
// a cryptographic operation costs no durable write of its own. A crash
// loses at most one flush interval of last uses, as it does of counters.

// metaLastUsageSince is the meta entry holding when this store began
// tracking last usage (RFC 3339), written by the first flush.
const metaLastUsageSince = "key-last-usage-since"

// lastUse is one key's last use, as kept and stored.
type lastUse struct {
	Operation string    `json:"operation"`
	At        time.Time `json:"at"`
	EventID   string    `json:"eventId,omitempty"`
	RequestID string    `json:"requestId,omitempty"`
}

// memUse is a last use as kept in memory: the event ID as an array, so
// that noting a use allocates nothing.
type memUse struct {
	op, requestID string
	at            time.Time
	event         EventID
}

func (m *memUse) stored() lastUse {
	return lastUse{Operation: m.op, At: m.at, EventID: m.event.String(), RequestID: m.requestID}
}

// lastUsage is the last use of each key since the last flush, by key ID,
// bounded as the usage counters are (usage.go).
type lastUsage struct {
	mu      sync.Mutex
	m       map[string]memUse
	started time.Time // when this Service began tracking
}

// RecordLastUsage notes a successful call of op on the keys it resolved
// (ARNs, as RequestInfo has them), with its request ID and the event ID of
// its audit record ("" without an audit trail). Only the cryptographic
// operations AWS tracks count; keys of other Regions are not this
// Service's to track.
func (s *Service) RecordLastUsage(keyARNs []string, op, requestID string, eventID *EventID) {
	if len(keyARNs) == 0 || !tracksLastUse[op] {
		return
	}
	s.recordLastUsage(keyARNs, op, requestID, eventID, s.now())
}

// RecordRequestLastUsage is RecordLastUsage for the request info
// describes: its keys and event ID, and its time, if the operation read
// it (requestTime), rather than a read of the clock of its own.
func (s *Service) RecordRequestLastUsage(info *RequestInfo, op, requestID string) {
	if len(info.KeyARNs) == 0 || !tracksLastUse[op] {
		return
	}
	at := info.now
	if at.IsZero() {
		at = s.now()
	}
	s.recordLastUsage(info.KeyARNs, op, requestID, &info.EventID, at)
}

func (s *Service) recordLastUsage(keyARNs []string, op, requestID string, eventID *EventID, at time.Time) {
	at = at.UTC()
	full := false
	bound := s.usageBound()
	s.last.mu.Lock()
	for _, arn := range keyARNs {
		id, ok := s.localKeyID(arn)
		if !ok {
			continue
		}
		if s.last.m == nil {
			s.last.m = map[string]memUse{}
		}
		if cur, ok := s.last.m[id]; ok && cur.at.After(at) {
			continue
		} else if !ok && len(s.last.m) >= bound {
			full = true
		}
		u := memUse{op: op, requestID: requestID, at: at}
		if eventID != nil {
			u.event = *eventID
		}
		s.last.m[id] = u
	}
	s.last.mu.Unlock()
	if full {
		s.flushSoon()
	}
}

// localKeyID returns the key ID of arn, a key ARN of this Service's
// Region, without allocating: it runs on every cryptographic call.
func (s *Service) localKeyID(arn string) (string, bool) {
	const prefix = "arn:aws:kms:"
	rest, ok := strings.CutPrefix(arn, prefix)
	if !ok || !strings.HasPrefix(rest, s.region) || len(rest) <= len(s.region) || rest[len(s.region)] != ':' {
		return "", false
	}
	i := strings.LastIndex(rest, ":key/")
	if i < 0 {
		return "", false
	}
	return rest[i+len(":key/"):], true
}

// flushLastUsage writes the last uses noted since the last flush, keeping
// a stored use that is newer, in transactions of at most flushChunk keys
// (see flushChunk). On failure the uses not yet written go back to memory.
func (s *Service) flushLastUsage(ctx context.Context) error {
	s.last.mu.Lock()
	taken := s.last.m
	s.last.m = nil
	s.last.mu.Unlock()
	if len(taken) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(taken))
	var err error
	for len(ids) > 0 && err == nil {
		chunk := ids[:min(len(ids), flushChunk)]
		err = s.store.Update(ctx, func(tx keystore.Tx) error {
			if raw, err := tx.Get(bucketMeta, metaLastUsageSince); err != nil {
				return err
			} else if raw == nil {
				if err := tx.Put(bucketMeta, metaLastUsageSince, []byte(s.last.started.Format(time.RFC3339Nano))); err != nil {
					return err
				}
			}
			for _, id := range chunk {
				m := taken[id]
				u := m.stored()
				if cur, err := getLastUse(tx, id); err != nil {
					return err
				} else if cur != nil && cur.At.After(u.At) {
					continue
				}
				if err := putJSON(tx, bucketLastUsage, id, u); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			ids = ids[len(chunk):]
		}
	}
	if err != nil {
		s.last.mu.Lock()
		if s.last.m == nil {
			s.last.m = map[string]memUse{}
		}
		for _, id := range ids {
			if cur, ok := s.last.m[id]; !ok || taken[id].at.After(cur.at) {
				s.last.m[id] = taken[id]
			}
		}
		s.last.mu.Unlock()
	}
	return err
}

func getLastUse(tx keystore.Tx, id string) (*lastUse, error) {
	raw, err := tx.Get(bucketLastUsage, id)
	if err != nil || raw == nil {
		return nil, err
	}
	u := new(lastUse)
	if err := json.Unmarshal(raw, u); err != nil {
		return nil, err
	}
	return u, nil
}

// KeyLastUsageData is AWS's KeyLastUsageData shape: empty when the key has
// not been used since tracking began.
type KeyLastUsageData struct {
	CloudTrailEventId string     `json:"CloudTrailEventId,omitempty"`
	KmsRequestId      string     `json:"KmsRequestId,omitempty"`
	Operation         string     `json:"Operation,omitempty"`
	Timestamp         *Timestamp `json:"Timestamp,omitempty"`
}

// GetKeyLastUsageOutput is the GetKeyLastUsage response.
type GetKeyLastUsageOutput struct {
	KeyId             string           `json:"KeyId"`
	KeyCreationDate   *Timestamp       `json:"KeyCreationDate,omitempty"`
	KeyLastUsage      KeyLastUsageData `json:"KeyLastUsage"`
	TrackingStartDate *Timestamp       `json:"TrackingStartDate,omitempty"`
}

// GetKeyLastUsage returns the last successful cryptographic operation on a
// key of the caller's account: what is in memory if newer than the store.
func (s *Service) GetKeyLastUsage(ctx context.Context, c *Caller, in *KeyIDInput) (*GetKeyLastUsageOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	if err := v.err(); err != nil {
		return nil, err
	}
	r, err := s.keyFor(ctx, c, &opGetKeyLastUsage.Keys[0], in.KeyId, nil)
	if err != nil {
		return nil, err
	}
	var (
		u     *lastUse
		since = s.last.started
	)
	err = s.store.View(ctx, func(tx keystore.Tx) error {
		raw, err := tx.Get(bucketMeta, metaLastUsageSince)
		if err != nil {
			return err
		}
		if t, perr := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(raw))); raw != nil && perr == nil {
			since = t
		}
		u, err = getLastUse(tx, r.ID)
		return err
	})
	if err != nil {
		return nil, internal(err)
	}
	s.last.mu.Lock()
	if m, ok := s.last.m[r.ID]; ok && (u == nil || m.at.After(u.At)) {
		st := m.stored()
		u = &st
	}
	s.last.mu.Unlock()
	out := &GetKeyLastUsageOutput{KeyId: r.ID, KeyCreationDate: ts(r.Created), TrackingStartDate: ts(since)}
	if r.Created.After(since) {
		out.TrackingStartDate = ts(r.Created)
	}
	if u != nil {
		out.KeyLastUsage = KeyLastUsageData{CloudTrailEventId: u.EventID, KmsRequestId: u.RequestID,
			Operation: u.Operation, Timestamp: ts(u.At)}
	}
	return out, nil
}
