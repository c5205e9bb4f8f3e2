package kms

import (
	"context"
	"errors"

	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/policy"
)

// BulkCreateKeys is a benchmark and administration facility, never a KMS
// operation (no route reaches it): it creates n symmetric encryption keys
// of account, each as CreateKey with no input but a description makes it
// (the default key policy, fresh material wrapped under the root, the
// record and its index entries put by putKeyTx, authenticated as every
// record is), batch keys to a store transaction instead of one each. It
// authorizes nothing, audits nothing and caches nothing: it is for
// `coffer bench scale --bulk`, on a data dir no server has open.
// TestBulkCreateKeysAsCreateKey holds its records to CreateKey's. progress,
// if not nil, is called after each batch with the keys made so far.
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
	recs := make([]*keyRecord, 0, batch)
	for done := 0; done < n; {
		recs = recs[:0]
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
			recs = append(recs, r)
		}
		s.writeMu.Lock()
		err := s.store.Update(ctx, func(tx keystore.Tx) error {
			for _, r := range recs {
				if err := putKeyTx(tx, r); err != nil {
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
