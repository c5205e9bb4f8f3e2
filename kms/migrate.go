package kms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// RewrapStats counts what Rewrap moved and what an earlier, interrupted run
// had already moved.
type RewrapStats struct {
	KeyVersions, AccessKeys int  // re-wrapped now (KeyVersions counts material pending rotation too)
	ImportTokens            int  // import tokens' wrapping private keys re-wrapped now
	TokenKey                bool // the session-token key (STS) re-wrapped now
	AuditKey                bool // the audit signing key re-wrapped now (RewrapAll)
	RecordKey               bool // the key that authenticates stored records re-wrapped now
	AlreadyMoved            int  // found under the new root already
}

// RewrapAll moves every secret a data dir holds wrapped under the root from
// to the root to: first everything in store (Rewrap, one transaction), then
// the audit signing key in the file auditKey (AuditKeyFile in the data dir;
// "" or a missing file when the audit trail was never on), replaced
// atomically. This is the one re-wrap path of `coffer admin hsm migrate`: a
// new kind of wrapped secret belongs here. Both steps are idempotent, so a
// run cut short between them is finished by running it again. The server
// must be stopped.
func RewrapAll(ctx context.Context, store keystore.Store, auditKey string, from, to hsm.Backend) (RewrapStats, error) {
	st, err := Rewrap(ctx, store, from, to)
	if err != nil || auditKey == "" {
		return st, err
	}
	moved, already, err := rewrapAuditKey(ctx, auditKey, from, to)
	if err != nil {
		return st, fmt.Errorf("audit signing key: %w", err)
	}
	st.AuditKey = moved
	if already {
		st.AlreadyMoved++
	}
	return st, nil
}

// Rewrap moves every secret store holds wrapped under the root from to the
// root to (the software-to-HSM migration): every version of every key's
// material in every Region (material pending rotation included), every
// import token's wrapping private key, every access key's secret, the
// session-token key and the record key, each under its own additional
// data, in one store
// transaction, so that the store is either wholly on the old root or wholly
// on the new one. Keys in custom key stores have no wrapped material and
// are left alone. Plaintext is zeroed as soon as it is wrapped again.
//
// Records are read and written authenticated under the record key (which
// does not change, so records Rewrap does not touch stay valid). A store
// at schema 1, never opened by a release that authenticates records, is
// moved as it is, and upgraded when the service next starts.
//
// Rewrap is idempotent: a secret that from cannot open but to can is one an
// interrupted run moved, and is left as it is. The server must be stopped.
func Rewrap(ctx context.Context, store keystore.Store, from, to hsm.Backend) (RewrapStats, error) {
	var st RewrapStats
	wrappedRecordKey, version, err := readSchemaMeta(ctx, store)
	if err != nil {
		return st, err
	}
	var recs *records // nil at schema 1: records are plain
	if wrappedRecordKey != nil {
		key, err := unwrapRecordKey(ctx, from, wrappedRecordKey, version)
		if err != nil { // moved already?
			if key, err = unwrapRecordKey(ctx, to, wrappedRecordKey, version); err != nil {
				return st, fmt.Errorf("record key: neither root opens it: %w", err)
			}
		}
		defer clear(key.key)
		recs = &records{store: store, key: key, place: asStored}
	} else if version != nil {
		return st, errors.New("the store has a schema version but no record key: it was edited or damaged")
	}
	err = store.Update(ctx, func(raw keystore.Tx) error {
		st = RewrapStats{}
		tx := raw
		if recs != nil {
			tx = recordTx{raw, recs}
			w, moved, err := RewrapOne(ctx, from, to, wrappedRecordKey, []byte(labelRecordKey))
			if err != nil {
				return fmt.Errorf("record key: %w", err)
			}
			if moved {
				st.RecordKey = true
				if err := raw.Put(bucketMeta, metaRecordKey, w); err != nil {
					return err
				}
			} else {
				st.AlreadyMoved++
			}
		}
		var keys, access, imports []string
		if err := tx.Scan(bucketKeys, "", "", func(k string, _ []byte) bool { keys = append(keys, k); return true }); err != nil {
			return err
		}
		if err := tx.Scan(bucketImports, "", "", func(k string, _ []byte) bool { imports = append(imports, k); return true }); err != nil {
			return err
		}
		if err := tx.Scan(bucketAccessKeys, "", "", func(k string, _ []byte) bool { access = append(access, k); return true }); err != nil {
			return err
		}
		for _, id := range keys {
			r, err := getKeyTx(tx, id)
			if err != nil || r == nil {
				return err
			}
			changed := false
			for v := range r.Versions {
				if len(r.Versions[v].Wrapped) == 0 {
					continue
				}
				w, moved, err := RewrapOne(ctx, from, to, r.Versions[v].Wrapped, materialAAD(r.arn(), v))
				if err != nil {
					return fmt.Errorf("key %s version %d: %w", id, v, err)
				}
				if moved {
					r.Versions[v].Wrapped = w
					st.KeyVersions++
					changed = true
				} else {
					st.AlreadyMoved++
				}
			}
			if p := r.PendingMaterial; p != nil && len(p.Wrapped) > 0 {
				v := len(r.Versions) // the index it was wrapped for (import.go)
				w, moved, err := RewrapOne(ctx, from, to, p.Wrapped, materialAAD(r.arn(), v))
				if err != nil {
					return fmt.Errorf("key %s material pending rotation: %w", id, err)
				}
				if moved {
					p.Wrapped = w
					st.KeyVersions++
					changed = true
				} else {
					st.AlreadyMoved++
				}
			}
			if changed { // under the store key it was read from, Region and all
				if err := putJSON(tx, bucketKeys, id, r); err != nil {
					return err
				}
			}
		}
		for _, k := range imports {
			moved, dropped, err := rewrapImportToken(ctx, tx, k, from, to)
			switch {
			case err != nil:
				return fmt.Errorf("import token %s: %w", k, err)
			case moved:
				st.ImportTokens++
			case !dropped:
				st.AlreadyMoved++
			}
		}
		for _, id := range access {
			raw, err := tx.Get(bucketAccessKeys, id)
			if err != nil {
				return err
			}
			rec := new(accessKeyRecord)
			if err := json.Unmarshal(raw, rec); err != nil {
				return fmt.Errorf("access key %s: %w", id, err)
			}
			w, moved, err := RewrapOne(ctx, from, to, rec.SecretWrapped, secretAAD(id))
			if err != nil {
				return fmt.Errorf("access key %s: %w", id, err)
			}
			if !moved {
				st.AlreadyMoved++
				continue
			}
			rec.SecretWrapped = w
			st.AccessKeys++
			if err := putJSON(tx, bucketAccessKeys, id, rec); err != nil {
				return err
			}
		}
		wrapped, err := tx.Get(bucketMeta, tokenKeyMeta)
		if err != nil || wrapped == nil { // no role was ever assumed
			return err
		}
		w, moved, err := RewrapOne(ctx, from, to, wrapped, tokenKeyAAD)
		switch {
		case err != nil:
			return fmt.Errorf("session-token key: %w", err)
		case !moved:
			st.AlreadyMoved++
			return nil
		}
		st.TokenKey = true
		return tx.Put(bucketMeta, tokenKeyMeta, w)
	})
	return st, err
}

// RewrapOne moves one wrapped secret from one root to another under the same
// additional data. moved is false, with wrapped returned as it is, when
// only to can open it: an earlier run moved it already.
func RewrapOne(ctx context.Context, from, to hsm.Backend, wrapped, aad []byte) (out []byte, moved bool, err error) {
	out, err = hsm.Rewrap(ctx, from, to, wrapped, aad)
	if err == nil {
		return out, true, nil
	}
	if !errors.Is(err, hsm.ErrUnwrap) {
		return nil, false, err
	}
	pt, err2 := to.Unwrap(ctx, wrapped, aad)
	if err2 != nil {
		return nil, false, fmt.Errorf("neither root opens it: %w", err)
	}
	clear(pt)
	return wrapped, false, nil
}

// rewrapImportToken moves the wrapping private key of the import token
// record stored under k ("<key store key>/<token name>", import.go): its
// additional data names the key by ARN, read from the key's record. The
// record of a token whose key is gone is deleted: no request can use it.
func rewrapImportToken(ctx context.Context, tx keystore.Tx, k string, from, to hsm.Backend) (moved, dropped bool, err error) {
	i := strings.LastIndexByte(k, '/')
	if i < 0 {
		return false, false, errors.New("not a <key>/<token name> store key")
	}
	keyName, name := k[:i], k[i+1:]
	raw, err := tx.Get(bucketImports, k)
	if err != nil {
		return false, false, err
	}
	rec := new(importRecord)
	if err := json.Unmarshal(raw, rec); err != nil {
		return false, false, err
	}
	r, err := getKeyTx(tx, keyName)
	if err != nil {
		return false, false, err
	}
	if r == nil {
		return false, true, tx.Delete(bucketImports, k)
	}
	w, moved, err := RewrapOne(ctx, from, to, rec.Wrapped, wrappingKeyAAD(r.arn(), name))
	if err != nil || !moved {
		return false, false, err
	}
	rec.Wrapped = w
	return true, false, putJSON(tx, bucketImports, k, rec)
}
