package kms

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/engine"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/policy"
)

// STS: AssumeRole issues temporary credentials for a role, and requests
// signed with them act as the role's session.
//
// A session needs no storage: its session token is the session itself —
// access key ID, secret, role, session name and expiry — sealed with the
// engine's blob format (a per-token key derived with HKDF-SHA-256 from the
// service's session-token key, then AES-256-GCM) under a 32-byte key that
// is stored only wrapped under the root of trust. Tokens survive restarts,
// work on every node that shares the store, and cannot be forged or read
// without the root. The secret is never stored elsewhere, logged or
// audited.

// ErrExpiredToken and ErrInvalidToken are what SessionCredentials reports
// about a session token; the server sends them as AWS does.
var (
	ErrExpiredToken = errors.New("kms: the security token is expired")
	ErrInvalidToken = errors.New("kms: the security token is invalid")
)

var (
	roleSessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	roleARNPattern         = regexp.MustCompile(`^arn:aws:iam::([0-9]{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$`)
)

// Session tokens are engine blobs under this fixed key ID and context.
var (
	tokenKeyID   = engine.KeyID([]byte(labelSTSTokenKeyID))
	tokenContext = map[string]string{labelSTSTokenPurposeKey: labelSTSTokenPurpose}
	tokenKeyAAD  = []byte(labelSTSTokenKey)
)

const (
	tokenKeyMeta   = "sts-token-key"
	maxTokenBytes  = 4096
	roleChainLimit = 3600 // seconds: a role session assuming a role
)

// sessionClaims is what a session token seals.
type sessionClaims struct {
	AccessKeyID string `json:"a"`
	Secret      string `json:"s"`
	RoleARN     string `json:"r"`
	RoleID      string `json:"i"`
	Session     string `json:"n"`
	Account     string `json:"c"`
	Expires     int64  `json:"e"` // Unix seconds
}

func (cl *sessionClaims) sessionARN() string {
	name := cl.RoleARN[strings.LastIndexByte(cl.RoleARN, '/')+1:]
	return "arn:aws:sts::" + cl.Account + ":assumed-role/" + name + "/" + cl.Session
}

// tokenKeys holds the unwrapped session-token key.
type tokenKeys struct {
	mu  sync.Mutex
	key engine.Material
}

// tokenKey returns the session-token key, creating it on first use.
func (s *Service) tokenKey(ctx context.Context) (engine.Material, error) {
	s.tokens.mu.Lock()
	defer s.tokens.mu.Unlock()
	if s.tokens.key != nil {
		return s.tokens.key, nil
	}
	var wrapped []byte
	if err := s.store.View(ctx, func(tx keystore.Tx) (err error) {
		wrapped, err = tx.Get(bucketMeta, tokenKeyMeta)
		return err
	}); err != nil {
		return nil, internal(err)
	}
	if wrapped == nil {
		fresh, err := s.randomBytes(32)
		if err != nil {
			return nil, err
		}
		defer clear(fresh)
		w, err := s.root.Wrap(ctx, fresh, tokenKeyAAD)
		if err != nil {
			return nil, hsmFailure(err, "the session-token key")
		}
		s.writeMu.Lock()
		err = s.store.Update(ctx, func(tx keystore.Tx) error {
			cur, err := tx.Get(bucketMeta, tokenKeyMeta)
			if err != nil || cur != nil {
				wrapped = cur // another node made one first: use it
				return err
			}
			wrapped = w
			return tx.Put(bucketMeta, tokenKeyMeta, w)
		})
		s.writeMu.Unlock()
		if err != nil {
			return nil, internal(err)
		}
	}
	key, err := s.root.Unwrap(ctx, wrapped, tokenKeyAAD)
	if err != nil {
		return nil, hsmFailure(err, "the session-token key")
	}
	s.tokens.key = engine.Material(key)
	return s.tokens.key, nil
}

// AssumeRoleInput is STS's AssumeRole request.
type AssumeRoleInput struct {
	RoleArn         string
	RoleSessionName string
	DurationSeconds *int
}

// AssumeRoleOutput is STS's AssumeRole result.
type AssumeRoleOutput struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
	AssumedRoleID   string // RoleId:session
	AssumedRoleARN  string
}

// AssumeRole issues temporary credentials for a role, as STS does: the
// role's trust policy must allow sts:AssumeRole to the caller, directly or
// (when it names the caller's account) through the caller's identity
// policies; across accounts both must. A role that does not exist is
// refused like one that does not trust the caller.
func (s *Service) AssumeRole(ctx context.Context, c *Caller, in *AssumeRoleInput) (*AssumeRoleOutput, error) {
	var v validator
	if v.required("roleArn", in.RoleArn != "") {
		v.length("roleArn", in.RoleArn, 20, 2048)
	}
	if v.required("roleSessionName", in.RoleSessionName != "") {
		v.pattern("roleSessionName", in.RoleSessionName, roleSessionNamePattern)
	}
	duration := defaultSessionSeconds
	if in.DurationSeconds != nil {
		duration = *in.DurationSeconds
		v.rangeInt("durationSeconds", duration, minSessionSeconds, maxSessionSeconds)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	m := roleARNPattern.FindStringSubmatch(in.RoleArn)
	if m == nil {
		return nil, newError(ErrValidation, "%s is invalid", truncate(in.RoleArn))
	}
	account, name := m[1], m[2]
	arn := roleOwner.arn(account, name)
	deny := func() error { return accessDenied(c, "sts:AssumeRole", in.RoleArn, "") }
	role, err := s.principal(ctx, arn)
	if err != nil {
		return nil, err
	}
	if role == nil || role.Type != "Role" {
		return nil, deny()
	}
	trust, err := policy.Parse([]byte(role.TrustPolicy), policy.TrustPolicy)
	if err != nil {
		return nil, deny()
	}
	ident, err := s.identity(ctx, c)
	if err != nil {
		return nil, err
	}
	req := policy.Request{PrincipalARN: c.ARN, PrincipalAccount: c.Account, Action: "sts:AssumeRole", Resource: arn, Context: s.requestContext(ctx, c, nil)}
	if policy.Authorize(trust, account, ident, false, &req) != policy.Allow {
		return nil, deny()
	}
	limit := role.MaxSessionDuration
	if c.RoleARN != "" {
		limit = roleChainLimit // role chaining, as AWS limits it
	}
	if duration > limit {
		return nil, newError(ErrValidation, "The requested DurationSeconds exceeds the MaxSessionDuration set for this role (%d).", limit)
	}

	idRaw, err := s.randomBytes(10)
	if err != nil {
		return nil, err
	}
	secretRaw, err := s.randomBytes(30)
	if err != nil {
		return nil, err
	}
	claims := sessionClaims{
		AccessKeyID: "ASIA" + base32.StdEncoding.EncodeToString(idRaw)[:16],
		Secret:      base64.StdEncoding.EncodeToString(secretRaw),
		RoleARN:     arn, RoleID: role.ID, Session: in.RoleSessionName, Account: account,
		Expires: s.now().Add(time.Duration(duration) * time.Second).Unix(),
	}
	clear(secretRaw)
	token, err := s.sealToken(ctx, &claims)
	if err != nil {
		return nil, err
	}
	return &AssumeRoleOutput{
		AccessKeyID: claims.AccessKeyID, SecretAccessKey: claims.Secret, SessionToken: token,
		Expiration: time.Unix(claims.Expires, 0).UTC(), AssumedRoleID: role.ID + ":" + in.RoleSessionName,
		AssumedRoleARN: claims.sessionARN(),
	}, nil
}

func (s *Service) sealToken(ctx context.Context, cl *sessionClaims) (string, error) {
	key, err := s.tokenKey(ctx)
	if err != nil {
		return "", err
	}
	pt, err := json.Marshal(cl)
	if err != nil {
		return "", internal(err)
	}
	defer clear(pt)
	blob, err := engine.Seal(nil, key, tokenKeyID, 0, pt, tokenContext)
	if err != nil {
		return "", internal(err)
	}
	return base64.StdEncoding.EncodeToString(blob), nil
}

// SessionCredentials opens a session token presented with a temporary
// access key and returns the session's caller and secret (the caller's own
// copies, as AccessKey's). ErrInvalidToken when the token is not one this
// service issued for that access key, ErrExpiredToken when its time is up.
func (s *Service) SessionCredentials(ctx context.Context, accessKeyID, token string) (*Caller, []byte, error) {
	if len(token) == 0 || len(token) > maxTokenBytes {
		return nil, nil, ErrInvalidToken
	}
	sum := sha256.Sum256([]byte(token))
	var (
		caller  *Caller
		secret  []byte
		expires time.Time
		found   bool
	)
	s.cache.accessKeys.view(accessKeyID, func(e *accessKeyEntry) {
		if subtle.ConstantTimeCompare(e.token[:], sum[:]) == 1 {
			found, expires = true, e.expires
			caller, secret = e.export()
		}
	})
	if !found {
		e, err := s.openToken(ctx, accessKeyID, token)
		if err != nil {
			return nil, nil, err
		}
		e.token = sum
		expires = e.expires
		caller, secret = e.export() // before put: from then on an eviction may zero e.secret
		s.cache.accessKeys.put(accessKeyID, e)
	}
	if !s.now().Before(expires) {
		clear(secret)
		return nil, nil, ErrExpiredToken
	}
	return caller, secret, nil
}

func (s *Service) openToken(ctx context.Context, accessKeyID, token string) (accessKeyEntry, error) {
	// One spelling per token: the decoder would also accept line breaks and
	// other padding bits, so the token must be exactly its blob's encoding.
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil || base64.StdEncoding.EncodeToString(raw) != token {
		return accessKeyEntry{}, ErrInvalidToken
	}
	blob, err := engine.ParseBlob(raw)
	if err != nil || blob.KeyID() != tokenKeyID {
		return accessKeyEntry{}, ErrInvalidToken
	}
	key, err := s.tokenKey(ctx)
	if err != nil {
		return accessKeyEntry{}, err
	}
	pt, err := engine.Open(nil, key, blob, tokenContext)
	if err != nil {
		return accessKeyEntry{}, ErrInvalidToken
	}
	defer clear(pt)
	var cl sessionClaims
	if json.Unmarshal(pt, &cl) != nil || subtle.ConstantTimeCompare([]byte(cl.AccessKeyID), []byte(accessKeyID)) != 1 ||
		!roleARNPattern.MatchString(cl.RoleARN) {
		return accessKeyEntry{}, ErrInvalidToken
	}
	secret := []byte(cl.Secret)
	return accessKeyEntry{
		caller:  Caller{ARN: cl.sessionARN(), Account: cl.Account, AccessKeyID: accessKeyID, RoleARN: cl.RoleARN, roleID: cl.RoleID},
		secret:  secret,
		expires: time.Unix(cl.Expires, 0),
		userID:  cl.RoleID + ":" + cl.Session,
	}, nil
}

// CallerIdentity is STS's GetCallerIdentity result.
type CallerIdentity struct {
	Account, ARN, UserID string
}

// GetCallerIdentity says who signed the request; it needs no permission,
// as in AWS.
func (s *Service) GetCallerIdentity(ctx context.Context, c *Caller) *CallerIdentity {
	id := &CallerIdentity{Account: c.Account, ARN: c.ARN, UserID: c.Account}
	e, ok := s.cache.accessKeys.get(c.AccessKeyID)
	switch {
	case ok && e.userID != "":
		id.UserID = e.userID
	case strings.Contains(c.ARN, ":user/"):
		// IAM answers with the user's unique ID; Coffer keeps none, and
		// gives the user name.
		id.UserID = c.ARN[strings.Index(c.ARN, ":user/")+len(":user/"):]
	}
	return id
}
