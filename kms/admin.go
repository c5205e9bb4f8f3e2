package kms

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"

	"github.com/coffer-kms/coffer/keystore"
)

// The administration API manages the principals of the caller's account:
// users, their access keys and their identity policies (IAM's shapes).

var (
	userNamePattern    = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	policyNamePattern2 = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
)

// Limits of identities.
const (
	maxAccessKeysPerUser = 2
	maxIdentityPolicy    = 6144 // IAM's inline user policy limit
)

// UserNameInput names a user.
type UserNameInput struct {
	UserName string `json:"UserName"`
}

// User is a user as the admin API shows it.
type User struct {
	UserName   string     `json:"UserName"`
	Arn        string     `json:"Arn"`
	CreateDate *Timestamp `json:"CreateDate"`
}

func (s *Service) userARN(account, name string) string {
	return "arn:aws:iam::" + account + ":user/" + name
}

func checkUserName(name string) error {
	var v validator
	if v.required("userName", name != "") {
		v.pattern("userName", name, userNamePattern)
	}
	return v.err()
}

func getPrincipalTx(tx keystore.Tx, arn string) (*Principal, error) {
	raw, err := tx.Get(bucketPrincipals, arn)
	if err != nil || raw == nil {
		return nil, err
	}
	p := new(Principal)
	return p, json.Unmarshal(raw, p)
}

// CreateUser creates a user in the caller's account.
func (s *Service) CreateUser(ctx context.Context, c *Caller, in *UserNameInput) (*User, error) {
	if err := checkUserName(in.UserName); err != nil {
		return nil, err
	}
	if err := s.authorizeIdentity(ctx, c, opCreateUser.Action, s.userARN(c.Account, in.UserName)); err != nil {
		return nil, err
	}
	uid, err := s.newUserID()
	if err != nil {
		return nil, err
	}
	p := &Principal{ARN: s.userARN(c.Account, in.UserName), Account: c.Account, Name: in.UserName, Type: "IAMUser", Created: s.now().UTC(), ID: uid}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err = s.store.Update(ctx, func(tx keystore.Tx) error {
		if cur, err := getPrincipalTx(tx, p.ARN); err != nil {
			return err
		} else if cur != nil {
			return newError(ErrAlreadyExists, "User with name %s already exists.", in.UserName)
		}
		return putJSON(tx, bucketPrincipals, p.ARN, p)
	})
	if err != nil {
		return nil, internal(err)
	}
	return &User{UserName: p.Name, Arn: p.ARN, CreateDate: ts(p.Created)}, nil
}

// ListUsersOutput lists the account's users.
type ListUsersOutput struct {
	Users []User `json:"Users"`
}

// ListUsers lists the users of the caller's account.
func (s *Service) ListUsers(ctx context.Context, c *Caller, _ *Empty) (*ListUsersOutput, error) {
	if err := s.authorizeIdentity(ctx, c, opListUsers.Action, "*"); err != nil {
		return nil, err
	}
	out := &ListUsersOutput{Users: []User{}}
	err := s.store.View(ctx, func(tx keystore.Tx) error {
		return tx.Scan(bucketPrincipals, "arn:aws:iam::"+c.Account+":user/", "", func(_ string, raw []byte) bool {
			var p Principal
			if json.Unmarshal(raw, &p) == nil {
				out.Users = append(out.Users, User{UserName: p.Name, Arn: p.ARN, CreateDate: ts(p.Created)})
			}
			return true
		})
	})
	if err != nil {
		return nil, internal(err)
	}
	return out, nil
}

// DeleteUser deletes a user, its access keys and its policies. The
// caller cannot delete itself, so an account is never left without the
// administrator who is acting.
func (s *Service) DeleteUser(ctx context.Context, c *Caller, in *UserNameInput) (*Empty, error) {
	if err := checkUserName(in.UserName); err != nil {
		return nil, err
	}
	if err := s.authorizeIdentity(ctx, c, opDeleteUser.Action, s.userARN(c.Account, in.UserName)); err != nil {
		return nil, err
	}
	arn := s.userARN(c.Account, in.UserName)
	if arn == c.ARN {
		return nil, newError(ErrValidation, "You cannot delete the user you are signed in as.")
	}
	var deleted []string
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.store.Update(ctx, func(tx keystore.Tx) error {
		if p, err := getPrincipalTx(tx, arn); err != nil {
			return err
		} else if p == nil {
			return newError(ErrNotFound, "The user with name %s cannot be found.", in.UserName)
		}
		var keys []string
		if err := scanAccessKeys(tx, func(k *accessKeyRecord) bool {
			if k.PrincipalARN == arn {
				keys = append(keys, k.ID)
			}
			return true
		}); err != nil {
			return err
		}
		for _, id := range keys {
			if err := tx.Delete(bucketAccessKeys, id); err != nil {
				return err
			}
		}
		deleted = keys
		return tx.Delete(bucketPrincipals, arn)
	})
	if err != nil {
		return nil, internal(err)
	}
	s.forgetAccessKeys(deleted)
	s.forgetPrincipal(arn)
	return &Empty{}, nil
}

func scanAccessKeys(tx keystore.Tx, fn func(*accessKeyRecord) bool) error {
	var derr error
	err := tx.Scan(bucketAccessKeys, "", "", func(_ string, raw []byte) bool {
		k := new(accessKeyRecord)
		if derr = json.Unmarshal(raw, k); derr != nil {
			return false
		}
		return fn(k)
	})
	if err != nil {
		return err
	}
	return derr
}

// AccessKey is an access key as the admin API shows it; the secret only
// in CreateAccessKey's answer.
type AccessKey struct {
	UserName        string     `json:"UserName"`
	AccessKeyId     string     `json:"AccessKeyId"`
	SecretAccessKey string     `json:"SecretAccessKey,omitempty"`
	Status          string     `json:"Status"`
	CreateDate      *Timestamp `json:"CreateDate"`
}

// CreateAccessKeyOutput is the CreateAccessKey response.
type CreateAccessKeyOutput struct {
	AccessKey AccessKey `json:"AccessKey"`
}

// CreateAccessKey makes an access key for a user of the caller's account
// (at most two per user, as IAM).
func (s *Service) CreateAccessKey(ctx context.Context, c *Caller, in *UserNameInput) (*CreateAccessKeyOutput, error) {
	if err := checkUserName(in.UserName); err != nil {
		return nil, err
	}
	if err := s.authorizeIdentity(ctx, c, opCreateAccessKey.Action, s.userARN(c.Account, in.UserName)); err != nil {
		return nil, err
	}
	var p *Principal
	if err := s.store.View(ctx, func(tx keystore.Tx) (err error) {
		p, err = getPrincipalTx(tx, s.userARN(c.Account, in.UserName))
		return err
	}); err != nil {
		return nil, internal(err)
	}
	if p == nil {
		return nil, newError(ErrNotFound, "The user with name %s cannot be found.", in.UserName)
	}
	rec, secret, err := s.newAccessKey(ctx, p)
	if err != nil {
		return nil, internal(err)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err = s.store.Update(ctx, func(tx keystore.Tx) error {
		n := 0
		if err := scanAccessKeys(tx, func(k *accessKeyRecord) bool {
			if k.PrincipalARN == p.ARN {
				n++
			}
			return true
		}); err != nil {
			return err
		}
		if n >= maxAccessKeysPerUser {
			return newError(ErrLimitExceeded, "Cannot exceed quota for AccessKeysPerUser: %d", maxAccessKeysPerUser)
		}
		return putJSON(tx, bucketAccessKeys, rec.ID, rec)
	})
	if err != nil {
		return nil, internal(err)
	}
	return &CreateAccessKeyOutput{AccessKey: AccessKey{UserName: p.Name, AccessKeyId: rec.ID, SecretAccessKey: secret, Status: "Active", CreateDate: ts(rec.Created)}}, nil
}

// ListAccessKeysOutput lists access keys, without secrets.
type ListAccessKeysOutput struct {
	AccessKeyMetadata []AccessKey `json:"AccessKeyMetadata"`
}

// ListAccessKeys lists a user's access keys: the named user's, or with no
// UserName the caller's own, as IAM does (IAM API reference,
// ListAccessKeys: "If the UserName is not specified, the user name is
// determined implicitly based on the Amazon Web Services access key ID used
// to sign the request"). iam:ListAccessKeys is authorized on that user's
// ARN, so that a resource-scoped policy holds.
func (s *Service) ListAccessKeys(ctx context.Context, c *Caller, in *UserNameInput) (*ListAccessKeysOutput, error) {
	owner := c.ARN
	if in.UserName != "" {
		if err := checkUserName(in.UserName); err != nil {
			return nil, err
		}
		owner = s.userARN(c.Account, in.UserName)
	} else if c.RoleARN != "" {
		// IAM's answer to temporary credentials without a UserName.
		return nil, newError(ErrValidation, "Must specify userName when calling with non-User credentials")
	}
	if err := s.authorizeIdentity(ctx, c, opListAccessKeys.Action, owner); err != nil {
		return nil, err
	}
	userPrefix := "arn:aws:iam::" + c.Account + ":user/"
	out := &ListAccessKeysOutput{AccessKeyMetadata: []AccessKey{}}
	err := s.store.View(ctx, func(tx keystore.Tx) error {
		out.AccessKeyMetadata = out.AccessKeyMetadata[:0] // View may run fn again
		return scanAccessKeys(tx, func(k *accessKeyRecord) bool {
			if k.Account == c.Account && k.PrincipalARN == owner {
				name, _ := strings.CutPrefix(k.PrincipalARN, userPrefix) // "" for an account root's keys
				if name == k.PrincipalARN {
					name = ""
				}
				out.AccessKeyMetadata = append(out.AccessKeyMetadata, AccessKey{UserName: name, AccessKeyId: k.ID, Status: "Active", CreateDate: ts(k.Created)})
			}
			return true
		})
	})
	if err != nil {
		return nil, internal(err)
	}
	return out, nil
}

// AccessKeyIDInput names an access key.
type AccessKeyIDInput struct {
	AccessKeyId string `json:"AccessKeyId"`
}

// DeleteAccessKey deletes an access key; requests signed with it fail at
// once. The key signing the request cannot delete itself.
//
// iam:DeleteAccessKey is authorized on the ARN of the key's owner, as IAM
// authorizes it on the user the key belongs to. A key that does not exist
// (or is another account's) has no owner: the caller learns that only if
// it may delete the access keys of every user ("*"); otherwise it gets the
// same refusal as for a key whose owner it may not act on, so that
// refusals tell nothing of which keys exist or whose they are.
func (s *Service) DeleteAccessKey(ctx context.Context, c *Caller, in *AccessKeyIDInput) (*Empty, error) {
	var v validator
	if v.required("accessKeyId", in.AccessKeyId != "") {
		v.length("accessKeyId", in.AccessKeyId, 16, 128)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	var k *accessKeyRecord
	if err := s.store.View(ctx, func(tx keystore.Tx) error {
		k = nil // View may run fn again
		raw, err := tx.Get(bucketAccessKeys, in.AccessKeyId)
		if err != nil || raw == nil {
			return err
		}
		var rec accessKeyRecord
		if json.Unmarshal(raw, &rec) == nil && rec.Account == c.Account {
			k = &rec
		}
		return nil
	}); err != nil {
		return nil, internal(err)
	}
	anyUser := s.authorizeIdentity(ctx, c, opDeleteAccessKey.Action, "*")
	if k == nil {
		if anyUser != nil {
			return nil, anyUser
		}
		return nil, newError(ErrNotFound, "The Access Key with id %s cannot be found.", in.AccessKeyId)
	}
	if err := s.authorizeIdentity(ctx, c, opDeleteAccessKey.Action, k.PrincipalARN); err != nil {
		if anyUser != nil {
			return nil, anyUser
		}
		return nil, err
	}
	if in.AccessKeyId == c.AccessKeyID {
		return nil, newError(ErrValidation, "You cannot delete the access key that signed this request.")
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.store.Update(ctx, func(tx keystore.Tx) error {
		raw, err := tx.Get(bucketAccessKeys, in.AccessKeyId)
		if err != nil {
			return err
		}
		var cur accessKeyRecord
		if raw == nil || json.Unmarshal(raw, &cur) != nil || cur.Account != c.Account || cur.PrincipalARN != k.PrincipalARN {
			return newError(ErrNotFound, "The Access Key with id %s cannot be found.", in.AccessKeyId)
		}
		return tx.Delete(bucketAccessKeys, in.AccessKeyId)
	})
	if err != nil {
		return nil, internal(err)
	}
	s.forgetAccessKeys([]string{in.AccessKeyId})
	return &Empty{}, nil
}

// forgetAccessKeys drops deleted keys' secrets from memory and tells the
// transport to drop what it derived from them.
func (s *Service) forgetAccessKeys(ids []string) {
	for _, id := range ids {
		s.cache.invalidate(cacheAccessKey, id)
	}
	if f := s.onAccessKeyDeleted.Load(); f != nil {
		for _, id := range ids {
			(*f)(id)
		}
	}
}

// OnAccessKeyDeleted registers a function called with each deleted access
// key ID (the server drops its derived signing keys).
func (s *Service) OnAccessKeyDeleted(f func(id string)) { s.onAccessKeyDeleted.Store(&f) }

// UserPolicyInput is PutUserPolicy's request; GetUserPolicy and
// DeleteUserPolicy use its names.
type UserPolicyInput struct {
	UserName       string `json:"UserName"`
	PolicyName     string `json:"PolicyName"`
	PolicyDocument string `json:"PolicyDocument,omitempty"`
}

// UserPolicyNames lists a user's policies.
type UserPolicyNames struct {
	PolicyNames []string `json:"PolicyNames"`
}

func checkUserPolicyNames(in *UserPolicyInput) error {
	return checkInlinePolicyName(checkUserName(in.UserName), in.PolicyName)
}

// checkInlinePolicyName checks an inline policy's name once its owner's name
// checked out (ownerErr nil).
func checkInlinePolicyName(ownerErr error, name string) error {
	if ownerErr != nil {
		return ownerErr
	}
	var v validator
	if v.required("policyName", name != "") {
		v.pattern("policyName", name, policyNamePattern2)
	}
	return v.err()
}

// PutUserPolicy sets an inline identity policy of a user.
func (s *Service) PutUserPolicy(ctx context.Context, c *Caller, in *UserPolicyInput) (*Empty, error) {
	if err := checkUserPolicyNames(in); err != nil {
		return nil, err
	}
	return &Empty{}, s.putInline(ctx, c, userOwner, in.UserName, in.PolicyName, in.PolicyDocument)
}

// GetUserPolicy returns one of a user's policies.
func (s *Service) GetUserPolicy(ctx context.Context, c *Caller, in *UserPolicyInput) (*UserPolicyInput, error) {
	if err := checkUserPolicyNames(in); err != nil {
		return nil, err
	}
	doc, err := s.getInline(ctx, c, userOwner, in.UserName, in.PolicyName)
	if err != nil {
		return nil, err
	}
	return &UserPolicyInput{UserName: in.UserName, PolicyName: in.PolicyName, PolicyDocument: doc}, nil
}

// ListUserPolicies names a user's policies.
func (s *Service) ListUserPolicies(ctx context.Context, c *Caller, in *UserNameInput) (*UserPolicyNames, error) {
	if err := checkUserName(in.UserName); err != nil {
		return nil, err
	}
	return s.listInline(ctx, c, userOwner, in.UserName)
}

// DeleteUserPolicy removes one of a user's policies.
func (s *Service) DeleteUserPolicy(ctx context.Context, c *Caller, in *UserPolicyInput) (*Empty, error) {
	if err := checkUserPolicyNames(in); err != nil {
		return nil, err
	}
	return &Empty{}, s.deleteInline(ctx, c, userOwner, in.UserName, in.PolicyName)
}

func (s *Service) updatePrincipal(ctx context.Context, arn, name string, fn func(*Principal) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.store.Update(ctx, func(tx keystore.Tx) error {
		p, err := getPrincipalTx(tx, arn)
		if err != nil {
			return err
		}
		if p == nil {
			kind := "user"
			if strings.Contains(arn, ":role/") {
				kind = "role"
			}
			return newError(ErrNotFound, "The %s with name %s cannot be found.", kind, name)
		}
		if err := fn(p); err != nil {
			return err
		}
		return putJSON(tx, bucketPrincipals, arn, p)
	})
	if err != nil {
		return internal(err)
	}
	s.forgetPrincipal(arn)
	return nil
}

// principal loads a principal (nil when absent).
func (s *Service) principal(ctx context.Context, arn string) (*Principal, error) {
	var p *Principal
	err := s.store.View(ctx, func(tx keystore.Tx) (err error) {
		p, err = getPrincipalTx(tx, arn)
		return err
	})
	if err != nil {
		return nil, internal(err)
	}
	return p, nil
}
