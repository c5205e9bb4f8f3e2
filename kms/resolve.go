package kms

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/engine"
	"github.com/coffer-kms/coffer/keystore"
)

// parseKeyID converts a canonical key ID (a lowercase UUID,
// 8-4-4-4-12 hex digits) to its 16 bytes.
func parseKeyID(id string) (engine.KeyID, bool) {
	var out engine.KeyID
	if h, ok := strings.CutPrefix(id, mrkPrefix); ok {
		return parseMRKHex(h)
	}
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return out, false
	}
	// Every group has an even number of digits, so a pair never spans a
	// dash; a dash anywhere else is not a hex digit.
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := lowerHex(id[i])
		lo, ok2 := lowerHex(id[i+1])
		if !ok1 || !ok2 {
			return out, false
		}
		out[j] = hi<<4 | lo
		i, j = i+2, j+1
	}
	return out, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func formatKeyID(b engine.KeyID) string {
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// kmsARN is a parsed arn:aws:kms:<region>:<account>:<kind>/<name>.
type kmsARN struct {
	region, account, kind, name string
}

func parseKMSARN(s string) (kmsARN, bool) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] != "aws" || parts[2] != "kms" {
		return kmsARN{}, false
	}
	kind, name, ok := strings.Cut(parts[5], "/")
	if !ok || name == "" || !accountPattern.MatchString(parts[4]) || parts[3] == "" {
		return kmsARN{}, false
	}
	return kmsARN{region: parts[3], account: parts[4], kind: kind, name: name}, true
}

func (s *Service) keyARN(account, id string) string {
	return "arn:aws:kms:" + s.region + ":" + account + ":key/" + id
}

func (s *Service) aliasARN(account, name string) string {
	return "arn:aws:kms:" + s.region + ":" + account + ":" + name
}

func keyNotFound(arn string) error {
	return newError(ErrNotFound, "Key '%s' does not exist", arn)
}

// resolveKey finds the key that keyID names for the caller: a key ID, key
// ARN, alias name or alias ARN.
func (s *Service) resolveKey(ctx context.Context, c *Caller, keyID string) (*keyRecord, error) {
	account := c.Account
	id := keyID
	switch {
	case strings.HasPrefix(keyID, "arn:"):
		a, ok := parseKMSARN(keyID)
		if !ok || (a.kind != "key" && a.kind != "alias") {
			return nil, newError(ErrNotFound, "Invalid arn %s", keyID)
		}
		if a.region != s.region {
			return nil, newError(ErrNotFound, "Invalid arn %s", truncate(a.region))
		}
		account = a.account
		if a.kind == "alias" {
			return s.resolveAliasFor(ctx, c, account, "alias/"+a.name)
		}
		id = a.name
	case strings.HasPrefix(keyID, "alias/"):
		return s.resolveAliasFor(ctx, c, account, keyID)
	}
	if _, ok := parseKeyID(id); !ok {
		return nil, newError(ErrNotFound, "Invalid keyId '%s'", truncate(keyID))
	}
	r, err := s.loadKey(ctx, id)
	if err != nil {
		return nil, internal(err)
	}
	if r == nil || r.Account != account {
		return nil, keyNotFound(s.keyARN(account, id))
	}
	noteKey(ctx, r)
	return r, nil
}

// keyIDForm is the form of key identifier keyID has. A malformed ARN is a
// key ARN, so that resolveKey reports it as AWS does.
func keyIDForm(keyID string) KeyIDForms {
	switch {
	case strings.HasPrefix(keyID, "arn:"):
		if a, ok := parseKMSARN(keyID); ok && a.kind == "alias" {
			return FormAliasARN
		}
		return FormKeyARN
	case strings.HasPrefix(keyID, "alias/"):
		return FormAliasName
	}
	return FormKeyID
}

// resolveKeyAs is resolveKey for a request member that accepts only the
// given forms. As AWS, an operation that takes no alias answers an alias
// with NotFoundException rather than acting on the alias's key.
func (s *Service) resolveKeyAs(ctx context.Context, c *Caller, keyID string, forms KeyIDForms) (*keyRecord, error) {
	switch f := keyIDForm(keyID); {
	case f&forms != 0:
		return s.resolveKey(ctx, c, keyID)
	case f == FormAliasARN:
		return nil, newError(ErrNotFound, "Invalid arn %s", truncate(keyID))
	default:
		return nil, newError(ErrNotFound, "Invalid keyId '%s'", truncate(keyID))
	}
}

// resolveKeyIDOrARN is resolveKey for members that name a key but never an
// alias (TargetKeyId of aliases, for example).
func (s *Service) resolveKeyIDOrARN(ctx context.Context, c *Caller, keyID string) (*keyRecord, error) {
	if strings.HasPrefix(keyID, "alias/") {
		return nil, newError(ErrValidation, "1 validation error detected: Value '%s' at 'targetKeyId' failed to satisfy constraint: Member must be a key ID or key ARN", truncate(keyID))
	}
	if a, ok := parseKMSARN(keyID); ok && a.kind == "alias" {
		return nil, newError(ErrValidation, "1 validation error detected: Value '%s' at 'targetKeyId' failed to satisfy constraint: Member must be a key ID or key ARN", truncate(keyID))
	}
	return s.resolveKey(ctx, c, keyID)
}

// aliasRecord is an alias as stored, under "<account>/<alias name>".
type aliasRecord struct {
	Account string    `json:"account"`
	Name    string    `json:"name"`
	Target  string    `json:"target"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

func aliasStoreKey(account, name string) string { return account + "/" + name }

func getAliasTx(tx keystore.Tx, account, name string) (*aliasRecord, error) {
	raw, err := tx.Get(bucketAliases, aliasStoreKey(account, name))
	if err != nil || raw == nil {
		return nil, err
	}
	a := new(aliasRecord)
	if err := json.Unmarshal(raw, a); err != nil {
		return nil, err
	}
	return a, nil
}

func putAliasTx(tx keystore.Tx, a *aliasRecord) error {
	raw, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := indexAliasTx(tx, a); err != nil { // keyindex.go
		return err
	}
	return tx.Put(bucketAliases, aliasStoreKey(a.Account, a.Name), raw)
}

// resolveAliasFor is resolveAlias for a request by c, which creates the
// AWS managed key an absent alias/aws/<service> of c's account names
// (managed.go).
func (s *Service) resolveAliasFor(ctx context.Context, c *Caller, account, name string) (*keyRecord, error) {
	r, err := s.resolveAlias(ctx, account, name)
	if err != nil && errors.Is(err, ErrNotFound) && strings.HasPrefix(name, managedAliasPrefix) {
		return s.managedKey(ctx, c, account, name)
	}
	return r, err
}

func (s *Service) resolveAlias(ctx context.Context, account, name string) (*keyRecord, error) {
	ref := aliasStoreKey(account, name)
	target, ok := s.cache.aliases.getAt(ref, s.requestTime(ctx))
	if !ok {
		gen := s.cache.aliases.generation()
		var a *aliasRecord
		err := s.store.View(ctx, func(tx keystore.Tx) error {
			var err error
			a, err = getAliasTx(tx, account, name)
			return err
		})
		if err != nil {
			return nil, internal(err)
		}
		if a == nil {
			return nil, newError(ErrNotFound, "Alias %s is not found.", s.aliasARN(account, name))
		}
		target = s.cache.aliases.fill(ref, a.Target, gen)
	}
	r, err := s.loadKey(ctx, target)
	if err != nil {
		return nil, internal(err)
	}
	if r == nil {
		return nil, keyNotFound(s.keyARN(account, target))
	}
	noteKey(ctx, r)
	return r, nil
}

// internal hides a storage or programming failure behind AWS's internal
// error; the cause is for logs only. A store that did not answer
// (keystore.ErrUnavailable: a lost database) is not an internal failure
// but a dependency's: DependencyTimeoutException, which the SDKs retry.
func internal(err error) error {
	if _, ok := err.(*Error); ok {
		return err
	}
	if StoreUnavailable(err) {
		return &Error{Kind: ErrDependencyTimeout, Message: dependencyTimeoutMessage, cause: err}
	}
	return &Error{Kind: ErrInternal, Message: "An internal error occurred.", cause: err}
}

// dependencyTimeoutMessage is AWS's message for DependencyTimeoutException.
const dependencyTimeoutMessage = "The system timed out while trying to fulfill the request."

// StoreUnavailable reports whether err, a failure a Service returned, is
// the store not answering (a lost database) rather than a fault: the
// transport answers it DependencyTimeoutException. Failures of a store
// transaction that reach the transport unwrapped are classified by it.
func StoreUnavailable(err error) bool {
	return errors.Is(err, keystore.ErrUnavailable)
}
