package kms

import (
	"context"
	"encoding/base32"
	"encoding/json"

	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/policy"
)

// Roles are IAM's: an identity with inline identity policies and a trust
// policy (AssumeRolePolicyDocument) naming who may assume it. A role has no
// access keys; callers get temporary credentials for it from STS
// AssumeRole (sts.go), and requests signed with those act as the role's
// session, arn:aws:sts::<account>:assumed-role/<role>/<session>, with the
// role's identity policies. Key policies naming the role's ARN match its
// sessions, as in AWS.

// Limits of roles, as IAM's.
const (
	minSessionSeconds     = 900
	defaultSessionSeconds = 3600
	maxSessionSeconds     = 43200
	maxTrustPolicy        = 2048 // IAM's default role trust policy quota
	maxRoleDescription    = 1000
)

func checkRoleName(name string) error {
	var v validator
	if v.required("roleName", name != "") {
		v.pattern("roleName", name, userNamePattern)
	}
	return v.err()
}

// validateTrustPolicy checks a trust policy: resource-based, so every
// statement names a principal.
func validateTrustPolicy(doc string) (*policy.Policy, error) {
	if len(doc) > maxTrustPolicy {
		return nil, newError(ErrLimitExceeded, "Cannot exceed quota for ACLSizePerRole: %d", maxTrustPolicy)
	}
	p, err := policy.Parse([]byte(doc), policy.TrustPolicy)
	if err != nil {
		return nil, newError(ErrMalformedPolicy, "%s", err.Error())
	}
	return p, nil
}

// CreateRoleInput is the CreateRole request.
type CreateRoleInput struct {
	RoleName                 string `json:"RoleName"`
	AssumeRolePolicyDocument string `json:"AssumeRolePolicyDocument"`
	Description              string `json:"Description,omitempty"`
	MaxSessionDuration       *int   `json:"MaxSessionDuration,omitempty"`
}

// Role is a role as the admin API shows it.
type Role struct {
	RoleName                 string     `json:"RoleName"`
	RoleId                   string     `json:"RoleId"`
	Arn                      string     `json:"Arn"`
	CreateDate               *Timestamp `json:"CreateDate"`
	AssumeRolePolicyDocument string     `json:"AssumeRolePolicyDocument"`
	Description              string     `json:"Description,omitempty"`
	MaxSessionDuration       int        `json:"MaxSessionDuration"`
}

// RoleOutput wraps a Role, as IAM's responses do.
type RoleOutput struct {
	Role Role `json:"Role"`
}

func roleOf(p *Principal) Role {
	return Role{RoleName: p.Name, RoleId: p.ID, Arn: p.ARN, CreateDate: ts(p.Created), AssumeRolePolicyDocument: p.TrustPolicy,
		Description: p.Description, MaxSessionDuration: p.MaxSessionDuration}
}

// CreateRole creates a role in the caller's account.
func (s *Service) CreateRole(ctx context.Context, c *Caller, in *CreateRoleInput) (*RoleOutput, error) {
	if err := checkRoleName(in.RoleName); err != nil {
		return nil, err
	}
	var v validator
	v.required("assumeRolePolicyDocument", in.AssumeRolePolicyDocument != "")
	v.length("description", in.Description, 0, maxRoleDescription)
	duration := defaultSessionSeconds
	if in.MaxSessionDuration != nil {
		duration = *in.MaxSessionDuration
		v.rangeInt("maxSessionDuration", duration, defaultSessionSeconds, maxSessionSeconds)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if _, err := validateTrustPolicy(in.AssumeRolePolicyDocument); err != nil {
		return nil, err
	}
	arn := roleOwner.arn(c.Account, in.RoleName)
	if err := s.authorizeIdentity(ctx, c, opCreateRole.Action, arn); err != nil {
		return nil, err
	}
	raw, err := s.randomBytes(10)
	if err != nil {
		return nil, err
	}
	p := &Principal{ARN: arn, Account: c.Account, Name: in.RoleName, Type: "Role", Created: s.now().UTC(),
		ID: "AROA" + base32.StdEncoding.EncodeToString(raw)[:16], TrustPolicy: in.AssumeRolePolicyDocument,
		Description: in.Description, MaxSessionDuration: duration}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err = s.store.Update(ctx, func(tx keystore.Tx) error {
		if cur, err := getPrincipalTx(tx, arn); err != nil {
			return err
		} else if cur != nil {
			return newError(ErrAlreadyExists, "Role with name %s already exists.", in.RoleName)
		}
		return putJSON(tx, bucketPrincipals, arn, p)
	})
	if err != nil {
		return nil, internal(err)
	}
	return &RoleOutput{Role: roleOf(p)}, nil
}

// RoleNameInput names a role.
type RoleNameInput struct {
	RoleName string `json:"RoleName"`
}

// GetRole describes a role.
func (s *Service) GetRole(ctx context.Context, c *Caller, in *RoleNameInput) (*RoleOutput, error) {
	if err := checkRoleName(in.RoleName); err != nil {
		return nil, err
	}
	if err := s.authorizeIdentity(ctx, c, opGetRole.Action, roleOwner.arn(c.Account, in.RoleName)); err != nil {
		return nil, err
	}
	p, err := s.loadOwner(ctx, roleOwner, c.Account, in.RoleName)
	if err != nil {
		return nil, err
	}
	return &RoleOutput{Role: roleOf(p)}, nil
}

// ListRolesOutput lists the account's roles.
type ListRolesOutput struct {
	Roles []Role `json:"Roles"`
}

// ListRoles lists the roles of the caller's account.
func (s *Service) ListRoles(ctx context.Context, c *Caller, _ *Empty) (*ListRolesOutput, error) {
	if err := s.authorizeIdentity(ctx, c, opListRoles.Action, "*"); err != nil {
		return nil, err
	}
	out := &ListRolesOutput{Roles: []Role{}}
	err := s.store.View(ctx, func(tx keystore.Tx) error {
		return tx.Scan(bucketPrincipals, "arn:aws:iam::"+c.Account+":role/", "", func(_ string, raw []byte) bool {
			var p Principal
			if json.Unmarshal(raw, &p) == nil {
				out.Roles = append(out.Roles, roleOf(&p))
			}
			return true
		})
	})
	if err != nil {
		return nil, internal(err)
	}
	return out, nil
}

// DeleteRole deletes a role and its policies. Sessions of the role stop
// working at once: their identity is looked up on every request.
func (s *Service) DeleteRole(ctx context.Context, c *Caller, in *RoleNameInput) (*Empty, error) {
	if err := checkRoleName(in.RoleName); err != nil {
		return nil, err
	}
	arn := roleOwner.arn(c.Account, in.RoleName)
	if err := s.authorizeIdentity(ctx, c, opDeleteRole.Action, arn); err != nil {
		return nil, err
	}
	if c.RoleARN == arn {
		return nil, newError(ErrValidation, "You cannot delete the role whose session signed this request.")
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.store.Update(ctx, func(tx keystore.Tx) error {
		p, err := getPrincipalTx(tx, arn)
		if err != nil {
			return err
		}
		if p == nil || p.Type != "Role" {
			return newError(ErrNotFound, "The role with name %s cannot be found.", in.RoleName)
		}
		return tx.Delete(bucketPrincipals, arn)
	})
	if err != nil {
		return nil, internal(err)
	}
	s.forgetPrincipal(arn)
	return &Empty{}, nil
}

// UpdateAssumeRolePolicyInput is the UpdateAssumeRolePolicy request.
type UpdateAssumeRolePolicyInput struct {
	RoleName       string `json:"RoleName"`
	PolicyDocument string `json:"PolicyDocument"`
}

// UpdateAssumeRolePolicy replaces a role's trust policy.
func (s *Service) UpdateAssumeRolePolicy(ctx context.Context, c *Caller, in *UpdateAssumeRolePolicyInput) (*Empty, error) {
	if err := checkRoleName(in.RoleName); err != nil {
		return nil, err
	}
	var v validator
	v.required("policyDocument", in.PolicyDocument != "")
	if err := v.err(); err != nil {
		return nil, err
	}
	if _, err := validateTrustPolicy(in.PolicyDocument); err != nil {
		return nil, err
	}
	arn := roleOwner.arn(c.Account, in.RoleName)
	if err := s.authorizeIdentity(ctx, c, opUpdateAssumeRolePolicy.Action, arn); err != nil {
		return nil, err
	}
	return &Empty{}, s.updateOwner(ctx, roleOwner, c.Account, in.RoleName, func(p *Principal) error {
		p.TrustPolicy = in.PolicyDocument
		return nil
	})
}

// RolePolicyInput is PutRolePolicy's request; GetRolePolicy and
// DeleteRolePolicy use its names.
type RolePolicyInput struct {
	RoleName       string `json:"RoleName"`
	PolicyName     string `json:"PolicyName"`
	PolicyDocument string `json:"PolicyDocument,omitempty"`
}

func checkRolePolicyNames(in *RolePolicyInput) error {
	return checkInlinePolicyName(checkRoleName(in.RoleName), in.PolicyName)
}

// PutRolePolicy sets an inline identity policy of a role.
func (s *Service) PutRolePolicy(ctx context.Context, c *Caller, in *RolePolicyInput) (*Empty, error) {
	if err := checkRolePolicyNames(in); err != nil {
		return nil, err
	}
	return &Empty{}, s.putInline(ctx, c, roleOwner, in.RoleName, in.PolicyName, in.PolicyDocument)
}

// GetRolePolicy returns one of a role's policies.
func (s *Service) GetRolePolicy(ctx context.Context, c *Caller, in *RolePolicyInput) (*RolePolicyInput, error) {
	if err := checkRolePolicyNames(in); err != nil {
		return nil, err
	}
	doc, err := s.getInline(ctx, c, roleOwner, in.RoleName, in.PolicyName)
	if err != nil {
		return nil, err
	}
	return &RolePolicyInput{RoleName: in.RoleName, PolicyName: in.PolicyName, PolicyDocument: doc}, nil
}

// ListRolePolicies names a role's policies.
func (s *Service) ListRolePolicies(ctx context.Context, c *Caller, in *RoleNameInput) (*UserPolicyNames, error) {
	if err := checkRoleName(in.RoleName); err != nil {
		return nil, err
	}
	return s.listInline(ctx, c, roleOwner, in.RoleName)
}

// DeleteRolePolicy removes one of a role's policies.
func (s *Service) DeleteRolePolicy(ctx context.Context, c *Caller, in *RolePolicyInput) (*Empty, error) {
	if err := checkRolePolicyNames(in); err != nil {
		return nil, err
	}
	return &Empty{}, s.deleteInline(ctx, c, roleOwner, in.RoleName, in.PolicyName)
}
