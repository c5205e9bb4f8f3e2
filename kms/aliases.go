package kms

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"

	"github.com/coffer-kms/coffer/keystore"
)

const maxAliasesPerKey = 50

var aliasPattern = regexp.MustCompile(`^[a-zA-Z0-9:/_-]+$`)

// AliasInput is the CreateAlias and UpdateAlias request.
type AliasInput struct {
	AliasName   string `json:"AliasName"`
	TargetKeyId string `json:"TargetKeyId"`
}

// checkAliasName validates the AliasName member, then the rules of
// customer aliases.
func checkAliasName(name string) error {
	var v validator
	if v.required("aliasName", name != "") {
		v.length("aliasName", name, 1, 256)
		v.pattern("aliasName", name, aliasPattern)
	}
	if err := v.err(); err != nil {
		return err
	}
	if !strings.HasPrefix(name, "alias/") {
		return newError(ErrValidation, "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html")
	}
	if len(name) == len("alias/") {
		return newError(ErrInvalidAliasName, "Alias name must have a name after the prefix \"alias/\".")
	}
	if strings.HasPrefix(name, "alias/aws/") {
		// AWS answers an exception its model does not list (moto, built
		// from AWS's answers, sends it with no message; a message helps).
		return newError(ErrNotAuthorized, "Alias names beginning with \"alias/aws/\" are reserved for AWS managed keys.")
	}
	// The model's pattern allows ':', the documentation does not:
	// "It can contain only alphanumeric characters, forward slashes (/),
	// underscores (_), and dashes (-)" (CreateAlias, AliasName).
	if strings.ContainsRune(name, ':') {
		return newError(ErrValidation, "%s contains invalid characters for an alias", name)
	}
	return nil
}

// checkAliasTarget refuses an alias given as TargetKeyId: an alias names a
// key, never another alias (CreateAlias, TargetKeyId: "You cannot specify
// another alias").
func checkAliasTarget(target string) error {
	if strings.HasPrefix(target, "alias/") || (strings.HasPrefix(target, "arn:") && strings.Contains(target, ":alias/")) {
		return newError(ErrValidation, "Aliases must refer to keys. Not aliases")
	}
	return nil
}

// CreateAlias names a key. The alias lives in the caller's account.
func (s *Service) CreateAlias(ctx context.Context, c *Caller, in *AliasInput) (*Empty, error) {
	if err := checkAliasName(in.AliasName); err != nil {
		return nil, err
	}
	var v validator
	v.keyID("targetKeyId", in.TargetKeyId)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkAliasTarget(in.TargetKeyId); err != nil {
		return nil, err
	}
	target, err := s.aliasTarget(ctx, c, opCreateAlias, in.AliasName, in.TargetKeyId)
	if err != nil {
		return nil, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err = s.store.Update(ctx, func(tx keystore.Tx) error {
		if a, err := getAliasTx(tx, c.Account, in.AliasName); err != nil {
			return err
		} else if a != nil {
			return newError(ErrAlreadyExists, "An alias with the name %s already exists", s.aliasARN(c.Account, in.AliasName))
		}
		if n, err := s.countAliases(tx, c.Account, target.ID); err != nil {
			return err
		} else if n >= maxAliasesPerKey {
			return newError(ErrLimitExceeded, "A KMS key can have at most %d aliases.", maxAliasesPerKey)
		}
		now := s.now().UTC()
		return putAliasTx(tx, &aliasRecord{Account: c.Account, Name: in.AliasName, Target: target.ID, Created: now, Updated: now})
	})
	s.cache.invalidate(cacheAlias, aliasStoreKey(c.Account, in.AliasName)) // a fill of "not found" in flight must not stand
	if err != nil {
		return nil, internal(err)
	}
	return &Empty{}, nil
}

// countAliases is the number of aliases of account that name key keyID.
func (s *Service) countAliases(tx keystore.Tx, account, keyID string) (int, error) {
	n := 0
	err := s.scanAliasesOf(tx, account, keyID, "", func(string) bool { n++; return true })
	return n, err
}

func scanAliases(tx keystore.Tx, account, after string, fn func(*aliasRecord) bool) error {
	prefix := account + "/"
	if after != "" {
		after = prefix + after
	}
	var decodeErr error
	err := tx.Scan(bucketAliases, prefix, after, func(_ string, raw []byte) bool {
		a := new(aliasRecord)
		if decodeErr = json.Unmarshal(raw, a); decodeErr != nil {
			return false
		}
		return fn(a)
	})
	if err != nil {
		return err
	}
	return decodeErr
}

// UpdateAlias points an existing alias at another key of the same type.
func (s *Service) UpdateAlias(ctx context.Context, c *Caller, in *AliasInput) (*Empty, error) {
	if err := checkAliasName(in.AliasName); err != nil {
		return nil, err
	}
	var v validator
	v.keyID("targetKeyId", in.TargetKeyId)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkAliasTarget(in.TargetKeyId); err != nil {
		return nil, err
	}
	target, err := s.aliasTarget(ctx, c, opUpdateAlias, in.AliasName, in.TargetKeyId)
	if err != nil {
		return nil, err
	}
	// The key the alias points at now must allow it too.
	if cur, err := s.resolveKey(ctx, c, in.AliasName); err == nil {
		if err := s.authorizeKey(ctx, c, cur, opUpdateAlias.Action, s.requestContext(ctx, c, cur)); err != nil {
			return nil, err
		}
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err = s.store.Update(ctx, func(tx keystore.Tx) error {
		a, err := getAliasTx(tx, c.Account, in.AliasName)
		if err != nil {
			return err
		}
		if a == nil {
			return newError(ErrNotFound, "Alias %s is not found.", s.aliasARN(c.Account, in.AliasName))
		}
		if cur, err := getKeyTx(tx, a.Target); err != nil {
			return err
		} else if cur != nil && (cur.Spec != target.Spec || cur.Usage != target.Usage) {
			return newError(ErrValidation, "The new target key %s must have the same key spec and key usage as the current target key.", target.arn())
		}
		if a.Target != target.ID {
			if n, err := s.countAliases(tx, c.Account, target.ID); err != nil {
				return err
			} else if n >= maxAliasesPerKey {
				return newError(ErrLimitExceeded, "A KMS key can have at most %d aliases.", maxAliasesPerKey)
			}
		}
		a.Target = target.ID
		a.Updated = s.now().UTC()
		return putAliasTx(tx, a)
	})
	s.cache.invalidate(cacheAlias, aliasStoreKey(c.Account, in.AliasName))
	if err != nil {
		return nil, internal(err)
	}
	return &Empty{}, nil
}

// DeleteAliasInput is the DeleteAlias request.
type DeleteAliasInput struct {
	AliasName string `json:"AliasName"`
}

// DeleteAlias removes an alias; its key is unaffected.
func (s *Service) DeleteAlias(ctx context.Context, c *Caller, in *DeleteAliasInput) (*Empty, error) {
	if err := checkAliasName(in.AliasName); err != nil {
		return nil, err
	}
	if err := s.authorizeIdentity(ctx, c, opDeleteAlias.Action, s.aliasARN(c.Account, in.AliasName)); err != nil {
		return nil, err
	}
	if cur, err := s.resolveKey(ctx, c, in.AliasName); err == nil {
		if err := s.authorizeKey(ctx, c, cur, opDeleteAlias.Action, s.requestContext(ctx, c, cur)); err != nil {
			return nil, err
		}
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.store.Update(ctx, func(tx keystore.Tx) error {
		a, err := getAliasTx(tx, c.Account, in.AliasName)
		if err != nil {
			return err
		}
		if a == nil {
			return newError(ErrNotFound, "Alias %s is not found.", s.aliasARN(c.Account, in.AliasName))
		}
		return deleteAliasTx(tx, a)
	})
	s.cache.invalidate(cacheAlias, aliasStoreKey(c.Account, in.AliasName))
	if err != nil {
		return nil, internal(err)
	}
	return &Empty{}, nil
}

// ListAliasesInput is the ListAliases request.
type ListAliasesInput struct {
	KeyId string `json:"KeyId"`
	ListInput
}

// AliasListEntry is one alias in ListAliases.
type AliasListEntry struct {
	AliasName       string     `json:"AliasName"`
	AliasArn        string     `json:"AliasArn"`
	TargetKeyId     string     `json:"TargetKeyId,omitempty"`
	CreationDate    *Timestamp `json:"CreationDate,omitempty"`
	LastUpdatedDate *Timestamp `json:"LastUpdatedDate,omitempty"`
}

// ListAliasesOutput is the ListAliases response.
type ListAliasesOutput struct {
	Aliases    []AliasListEntry `json:"Aliases"`
	NextMarker string           `json:"NextMarker,omitempty"`
	Truncated  bool             `json:"Truncated"`
}

// ListAliases pages through the caller account's aliases in name order,
// optionally only those of one key.
func (s *Service) ListAliases(ctx context.Context, c *Caller, in *ListAliasesInput) (*ListAliasesOutput, error) {
	var v validator
	if in.KeyId != "" {
		v.length("keyId", in.KeyId, 1, 2048)
	}
	v.limit(in.Limit)
	v.marker(in.Marker)
	if err := v.err(); err != nil {
		return nil, err
	}
	after, err := decodeMarker("aliases", in.Marker)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeIdentity(ctx, c, opListAliases.Action, "*"); err != nil {
		return nil, err
	}
	var keyID string
	if in.KeyId != "" {
		r, err := s.resolveKeyIDOrARN(ctx, c, in.KeyId)
		if err != nil {
			return nil, err
		}
		keyID = r.ID
	}
	limit := pageLimit(in.Limit, 50, 100)
	out := &ListAliasesOutput{Aliases: []AliasListEntry{}}
	add := func(a *aliasRecord) bool {
		if len(out.Aliases) == limit {
			out.Truncated = true
			return false
		}
		out.Aliases = append(out.Aliases, AliasListEntry{
			AliasName:       a.Name,
			AliasArn:        s.aliasARN(a.Account, a.Name),
			TargetKeyId:     a.Target,
			CreationDate:    ts(a.Created),
			LastUpdatedDate: ts(a.Updated),
		})
		return true
	}
	err = s.store.View(ctx, func(tx keystore.Tx) error {
		out.Aliases, out.Truncated = out.Aliases[:0], false // View may run fn again
		if keyID == "" {
			return scanAliases(tx, c.Account, after, add)
		}
		// One key's aliases: its entries in aliases-by-key (keyindex.go),
		// in name order as the full list is.
		var failed error
		err := s.scanAliasesOf(tx, c.Account, keyID, after, func(name string) bool {
			a, err := getAliasTx(tx, c.Account, name)
			if err != nil || a == nil {
				failed = err
				return err == nil
			}
			return add(a)
		})
		if err == nil {
			err = failed
		}
		return err
	})
	if err != nil {
		return nil, internal(err)
	}
	if out.Truncated {
		out.NextMarker = encodeMarker("aliases", out.Aliases[len(out.Aliases)-1].AliasName)
	}
	return out, nil
}

// aliasTarget authorizes an alias change, which AWS governs twice: by
// identity policies on the alias and by the target key's policy.
func (s *Service) aliasTarget(ctx context.Context, c *Caller, op *Operation, alias, targetKeyID string) (*keyRecord, error) {
	if err := s.authorizeIdentity(ctx, c, op.Action, s.aliasARN(c.Account, alias)); err != nil {
		return nil, err
	}
	target, err := s.resolveKeyIDOrARN(ctx, c, targetKeyID)
	if err != nil {
		return nil, err
	}
	if target.Account != c.Account {
		return nil, keyNotFound(target.arn())
	}
	k := op.Key("TargetKeyId")
	if err := s.authorizeKey(ctx, c, target, k.Action, s.requestContext(ctx, c, target)); err != nil {
		return nil, err
	}
	if err := k.checkState(target); err != nil {
		return nil, err
	}
	return target, nil
}
