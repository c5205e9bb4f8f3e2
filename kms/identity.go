package kms

import (
	"context"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// Principal is an IAM-style identity: a user, a role or an account root.
type Principal struct {
	ARN      string            `json:"arn"`
	Account  string            `json:"account"`
	Name     string            `json:"name"`
	Type     string            `json:"type"` // "IAMUser", "Role" or "Root"
	Created  time.Time         `json:"created"`
	Policies map[string]string `json:"policies,omitempty"` // identity policies by name
	// ID is the unique ID: AIDA… for a user (IAM's UserId), AROA… for a
	// role (RoleId). Key policies and grants that name the principal bind
	// to it (principalids.go in authz.go), so that a principal deleted and
	// created again under the same name is another principal. Users
	// created before IDs existed get one on their first use (ensureUserID).
	ID string `json:"id,omitempty"`

	// Roles only.
	TrustPolicy        string `json:"trustPolicy,omitempty"` // AssumeRolePolicyDocument
	Description        string `json:"description,omitempty"`
	MaxSessionDuration int    `json:"maxSessionDuration,omitempty"` // seconds
}

// accessKeyRecord is an access key as stored: the secret only wrapped.
type accessKeyRecord struct {
	ID            string    `json:"id"`
	PrincipalARN  string    `json:"principal"`
	Account       string    `json:"account"`
	SecretWrapped []byte    `json:"secretWrapped"`
	Created       time.Time `json:"created"`
}

// Credentials are a newly created access key, shown to its owner once.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	PrincipalARN    string
}

// ErrUnknownAccessKey reports an access key ID that does not exist.
var ErrUnknownAccessKey = errors.New("kms: unknown access key")

func secretAAD(id string) []byte { return []byte(labelAccessKey + "|" + id) }

// Admin principal created on first start.
const adminUser = "admin"

// AdministratorPolicy is the identity policy given to the first administrator.
const AdministratorPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"AdministratorAccess","Effect":"Allow","Action":"*","Resource":"*"}]}`

// Bootstrap creates the administrator user of the service's account and an
// access key for it, once. It returns the credentials when it created them
// and nil when an administrator already existed.
func (s *Service) Bootstrap(ctx context.Context) (*Credentials, error) {
	var done bool
	if err := s.store.View(ctx, func(tx keystore.Tx) error {
		v, err := tx.Get(bucketMeta, "bootstrapped")
		done = v != nil
		return err
	}); err != nil {
		return nil, err
	}
	if done {
		return nil, nil
	}
	uid, err := s.newUserID()
	if err != nil {
		return nil, err
	}
	p := &Principal{
		ID:       uid,
		ARN:      "arn:aws:iam::" + s.account + ":user/" + adminUser,
		Account:  s.account,
		Name:     adminUser,
		Type:     "IAMUser",
		Created:  s.now().UTC(),
		Policies: map[string]string{"AdministratorAccess": AdministratorPolicy},
	}
	rec, secret, err := s.newAccessKey(ctx, p)
	if err != nil {
		return nil, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err = s.store.Update(ctx, func(tx keystore.Tx) error {
		if v, err := tx.Get(bucketMeta, "bootstrapped"); err != nil || v != nil {
			if err == nil {
				err = errors.New("kms: bootstrapped concurrently")
			}
			return err
		}
		if err := putJSON(tx, bucketPrincipals, p.ARN, p); err != nil {
			return err
		}
		if err := putJSON(tx, bucketAccessKeys, rec.ID, rec); err != nil {
			return err
		}
		return tx.Put(bucketMeta, "bootstrapped", []byte(p.ARN))
	})
	if err != nil {
		return nil, err
	}
	return &Credentials{AccessKeyID: rec.ID, SecretAccessKey: secret, PrincipalARN: p.ARN}, nil
}

func putJSON(tx keystore.Tx, bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Put(bucket, key, raw)
}

// newAccessKey makes an AWS-shaped access key pair for p, its secret
// wrapped under the root.
func (s *Service) newAccessKey(ctx context.Context, p *Principal) (*accessKeyRecord, string, error) {
	idRaw, err := s.randomBytes(10)
	if err != nil {
		return nil, "", err
	}
	secRaw, err := s.randomBytes(30)
	if err != nil {
		return nil, "", err
	}
	id := "AKIA" + base32.StdEncoding.EncodeToString(idRaw)[:16]
	secret := base64.StdEncoding.EncodeToString(secRaw)
	clear(secRaw)
	wrapped, err := s.root.Wrap(ctx, []byte(secret), secretAAD(id))
	if err != nil {
		return nil, "", hsmFailure(err, "a new secret access key")
	}
	return &accessKeyRecord{ID: id, PrincipalARN: p.ARN, Account: p.Account, SecretWrapped: wrapped, Created: s.now().UTC()}, secret, nil
}

type accessKeyEntry struct {
	caller Caller
	secret []byte
	// Temporary credentials only: the SHA-256 of the session token they
	// came with, their expiry, and STS's user ID (RoleId:session).
	token   [32]byte
	expires time.Time
	userID  string
}

// AccessKey returns the caller an access key authenticates and its secret,
// for SigV4 verification. Both are the caller's own copies (one
// allocation): it may complete the Caller for its request, and should clear
// the secret when done: the cached one is zeroed when evicted, which may
// happen at any time. ErrUnknownAccessKey when it does not exist.
func (s *Service) AccessKey(ctx context.Context, id string) (*Caller, []byte, error) {
	var (
		caller *Caller
		secret []byte
	)
	if s.cache.accessKeys.viewAt(id, s.requestTime(ctx), func(e *accessKeyEntry) { caller, secret = e.export() }) {
		return caller, secret, nil
	}
	if len(id) < 16 || len(id) > 128 {
		return nil, nil, ErrUnknownAccessKey
	}
	var (
		rec    *accessKeyRecord
		userID string
	)
	err := s.store.View(ctx, func(tx keystore.Tx) error {
		rec, userID = nil, "" // View may run fn again
		raw, err := tx.Get(bucketAccessKeys, id)
		if err != nil || raw == nil {
			return err
		}
		rec = new(accessKeyRecord)
		if err := json.Unmarshal(raw, rec); err != nil {
			return err
		}
		p, err := getPrincipalTx(tx, rec.PrincipalARN)
		if p != nil {
			userID = p.ID
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if rec == nil {
		return nil, nil, ErrUnknownAccessKey
	}
	if userID == "" && isUserARN(rec.PrincipalARN) {
		// A user of a release before unique IDs: it gets one now.
		if userID, err = s.ensureUserID(ctx, rec.PrincipalARN); err != nil {
			return nil, nil, err
		}
	}
	unwrapped, err := s.root.Unwrap(ctx, rec.SecretWrapped, secretAAD(id))
	if err != nil {
		if errors.Is(err, hsm.ErrUnavailable) {
			// The root cannot be reached: the answer the table gives
			// (DependencyTimeoutException while it reconnects), not an
			// internal failure nor an unknown key.
			return nil, nil, hsmFailure(err, "the access key")
		}
		return nil, nil, ErrUnknownAccessKey
	}
	e := accessKeyEntry{caller: Caller{ARN: rec.PrincipalARN, Account: rec.Account, AccessKeyID: id, userID: userID}, secret: unwrapped}
	caller, out := e.export() // before put: from then on an eviction may zero e.secret
	s.cache.accessKeys.put(id, e)
	return caller, out, nil
}

// secretCopyLen holds an access key's secret: 40 base64 characters.
const secretCopyLen = 40

// exportedCredentials is what export returns, in one allocation.
type exportedCredentials struct {
	caller Caller
	secret [secretCopyLen]byte
}

// export copies e's caller and secret for a caller of AccessKey or
// SessionCredentials. The cache's secret is never handed out: eviction
// zeroes it while the transport may still be deriving a signing key from
// it, and a key derived from zeros would be cached for the access key and
// day (issue 19.10).
func (e *accessKeyEntry) export() (*Caller, []byte) {
	out := &exportedCredentials{caller: e.caller}
	secret := out.secret[:0]
	if len(e.secret) > len(out.secret) {
		secret = make([]byte, 0, len(e.secret))
	}
	return &out.caller, append(secret, e.secret...)
}

// newUserID makes a user's unique ID as IAM shapes it: "AIDA" and 17
// characters of upper-case base32 (IAM's "Unique identifiers",
// docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-unique-ids).
func (s *Service) newUserID() (string, error) {
	raw, err := s.randomBytes(11)
	if err != nil {
		return "", err
	}
	return "AIDA" + base32.StdEncoding.EncodeToString(raw)[:17], nil
}

// ensureUserID returns the user's unique ID, giving it one, through the
// normal record path, if it was created before users had one. "" when the
// user does not exist.
func (s *Service) ensureUserID(ctx context.Context, arn string) (string, error) {
	id, err := s.newUserID()
	if err != nil {
		return "", err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var out string
	err = s.store.Update(ctx, func(tx keystore.Tx) error {
		out = ""
		p, err := getPrincipalTx(tx, arn)
		if err != nil || p == nil {
			return err
		}
		if p.ID == "" {
			p.ID = id
			if err := putJSON(tx, bucketPrincipals, arn, p); err != nil {
				return err
			}
		}
		out = p.ID
		return nil
	})
	if err != nil {
		return "", internal(err)
	}
	s.forgetPrincipal(arn)
	return out, nil
}

// isUserARN and isRoleARN tell IAM user and role ARNs (with any path).
func isUserARN(arn string) bool { return iamResourceType(arn) == "user" }
func isRoleARN(arn string) bool { return iamResourceType(arn) == "role" }

func iamResourceType(arn string) string {
	rest, ok := strings.CutPrefix(arn, "arn:")
	if !ok {
		return ""
	}
	parts := strings.SplitN(rest, ":", 5) // partition, service, region, account, resource
	if len(parts) != 5 || parts[1] != "iam" {
		return ""
	}
	typ, _, ok := strings.Cut(parts[4], "/")
	if !ok {
		return ""
	}
	return typ
}
