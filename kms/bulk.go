package kms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/engine"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/policy"
)

// BulkCreateKeys is a benchmark and administration facility, never a KMS
// operation (no route reaches it): it creates n symmetric encryption keys
// of account, each as CreateKey with no input but a description makes it
// (the default key policy, fresh material wrapped under the root, the
// record and its index entries put by putKeyTx, authenticated as every
// record is), batch keys to a store transaction instead of one each. It
// authorizes nothing and caches nothing: it is for `coffer bench scale
// --bulk`, on a data dir no server has open. It audits as the service
// does what it does by itself: each key's CreateKey record
// (bulkCreateRecord, an AwsServiceEvent) goes into the audit outbox in the
// transaction that writes the key, so that a crash leaves both or
// neither, and the next server to open the store appends it to its trail
// before it serves (server's RecoverAudit). TestBulkCreateKeysAsCreateKey
// holds its records to CreateKey's. progress, if not nil, is called after
// each batch with the keys made so far.
func (s *Service) BulkCreateKeys(ctx context.Context, account, description string, n, batch int, progress func(done int)) error {
	if !accountPattern.MatchString(account) || n < 0 || batch <= 0 {
		return errors.New("kms: BulkCreateKeys needs a 12-digit account, n ≥ 0 and batch > 0")
	}
	if len(description) > maxDescription {
		return errors.New("kms: BulkCreateKeys: description too long")
	}
	// The keys are indexed as they are written: on a store that has no
	// keys yet the indexes are complete already, and saying so now spares
	// the first maintenance run a scan of everything written here.
	if err := s.ensureKeyIndexes(ctx); err != nil {
		return err
	}
	policyDoc := string(policy.DefaultKeyPolicy(account))
	started := s.now()
	// What CreateKey's record holds of the request is the same for every
	// key; of the response, see bulkResponse.
	params, err := AuditedMembers(&CreateKeyInput{Description: description}, opCreateKey.Audited, true)
	if err != nil {
		return err
	}
	var resp bulkResponse
	recs := make([]*keyRecord, 0, batch)
	names := make([]string, 0, batch)
	events := make([][]byte, 0, batch)
	for done := 0; done < n; {
		recs, names, events = recs[:0], names[:0], events[:0]
		for range min(batch, n-done) {
			id, err := s.newKeyID()
			if err != nil {
				return err
			}
			now := s.now().UTC()
			r := s.newKeyRecord(id, account, now, description, UsageEncryptDecrypt, SpecSymmetric, policyDoc)
			r.prepare()
			ver, err := s.newVersion(ctx, r, now, "")
			if err != nil {
				return err
			}
			r.Versions = []keyVersion{ver}
			eventID, err := s.bulkEventID(started, uint32(done+len(recs)))
			if err != nil {
				return err
			}
			rec, err := s.bulkCreateRecord(r, eventID, params, &resp, now)
			if err != nil {
				return err
			}
			recs, names, events = append(recs, r), append(names, outboxName(s.node, eventID)), append(events, rec)
		}
		s.writeMu.Lock()
		err := s.store.Update(ctx, func(tx keystore.Tx) error {
			for i, r := range recs {
				if err := putKeyTx(tx, r); err != nil {
					return err
				}
				if err := tx.Put(bucketOutbox, names[i], events[i]); err != nil {
					return err
				}
			}
			return nil
		})
		s.writeMu.Unlock()
		if err != nil {
			return err
		}
		done += len(recs)
		if progress != nil {
			progress(done)
		}
	}
	return nil
}

// bulkEventID is the request ID of the seq'th key of a BulkCreateKeys
// begun at started: ServiceEventPrefix and a time-ordered (version 7) UUID
// whose 48-bit time is started's milliseconds, followed by seq and 42
// random bits. The records' outbox names then rise with the keys, and
// each batch's entries go at the end of the outbox's tree, a few pages a
// transaction: random (version 4) names dirtied a page of the tree an
// entry, and the bulk creation ran 3–4× slower on bbolt.
func (s *Service) bulkEventID(started time.Time, seq uint32) (string, error) {
	raw, err := s.randomBytes(16)
	if err != nil {
		return "", err
	}
	ms := uint64(started.UnixMilli())
	for i := range 6 {
		raw[i] = byte(ms >> (40 - 8*i))
	}
	raw[6] = 0x70 | byte(seq>>28)&0x0f
	raw[7] = byte(seq >> 20)
	raw[8] = 0x80 | byte(seq>>14)&0x3f
	raw[9] = byte(seq >> 6)
	raw[10] = byte(seq)<<2 | raw[10]&0x03
	return ServiceEventPrefix + formatKeyID(engine.KeyID(raw)), nil
}

// BulkCreateEventData is the additionalEventData of the CreateKey records
// of BulkCreateKeys: what made the key, which no caller did.
const BulkCreateEventData = `{"createdBy":"BulkCreateKeys"}`

// bulkCreateRecord is the audit record of key r made by BulkCreateKeys: the
// record of CreateKey with only a description, as the server writes it
// (its request parameters, params, and response elements are the members
// the catalogue audits, opCreateKey), made by the service itself — as
// CloudTrail records what a service does on its own and as Coffer's other
// service events are (serviceEvent): eventType AwsServiceEvent, identity
// AWSService kms.amazonaws.com, never a caller that did not call.
func (s *Service) bulkCreateRecord(r *keyRecord, eventID string, params json.RawMessage, resp *bulkResponse, at time.Time) ([]byte, error) {
	elems, err := resp.of(r)
	if err != nil {
		return nil, err
	}
	rec := audit.Record{
		EventVersion:        audit.EventVersion,
		UserIdentity:        audit.UserIdentity{Type: "AWSService", PrincipalID: audit.EventSource, AccountID: r.Account},
		EventTime:           at.UTC().Format(time.RFC3339),
		EventSource:         audit.EventSource,
		EventName:           opCreateKey.Name,
		AWSRegion:           s.region,
		RequestParameters:   params,
		ResponseElements:    elems,
		AdditionalEventData: json.RawMessage(BulkCreateEventData),
		RequestID:           eventID,
		EventID:             eventID[len(ServiceEventPrefix):],
		EventType:           audit.EventTypeServiceEvent,
		Resources:           []audit.Resource{{ARN: r.arn(), Type: audit.ResourceTypeKey, AccountID: r.Account}},
		RecipientAccountID:  r.Account,
	}
	return rec.AppendJSON(nil)
}

// bulkResponse renders the response elements of BulkCreateKeys's records.
// AuditedMembers decodes and encodes the response again (a third of the
// bulk creation's CPU); when, for the first key, it leaves the response as
// encoded — every member of CreateKeyOutput audited, none empty, as with
// the catalogue's CreateKey row — the encoding is used as it is for the
// keys after, which differ only in values.
type bulkResponse struct{ checked, identity bool }

func (b *bulkResponse) of(r *keyRecord) (json.RawMessage, error) {
	raw, err := json.Marshal(&CreateKeyOutput{KeyMetadata: r.metadata()})
	if err != nil || (b.checked && b.identity) {
		return raw, err
	}
	elems, err := AuditedMembers(json.RawMessage(raw), opCreateKey.AuditedResponse, false)
	if !b.checked && err == nil {
		b.checked, b.identity = true, bytes.Equal(elems, raw)
	}
	return elems, err
}

// AuditedMembers renders v, an operation's input or output, as the trail
// holds it: v's JSON object with only the members allowed keeps (a row's
// Audited or AuditedResponse), empty ones dropped, names in lower camel
// case when lower is set (request parameters). The server's records and
// BulkCreateKeys' both render through it.
func AuditedMembers(v any, allowed func(string) bool, lower bool) (json.RawMessage, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		if !allowed(k) || string(v) == "null" || string(v) == `""` || string(v) == "false" || string(v) == "[]" || string(v) == "{}" {
			continue
		}
		if lower {
			k = string(bytes.ToLower([]byte(k[:1]))) + k[1:]
		}
		out[k] = v
	}
	return json.Marshal(out)
}
