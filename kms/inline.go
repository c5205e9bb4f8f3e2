package kms

import (
	"context"
	"slices"
)

// Inline identity policies are attached to a user or a role; owner tells
// the two apart in ARNs, action names, messages and stored types.
type owner struct {
	kind  string // "user" or "role", as in ARNs and messages
	Kind  string // "User" or "Role", as in action names
	typ   string // Principal.Type
	limit string // the quota's name in LimitExceeded messages
}

var (
	userOwner = owner{"user", "User", "IAMUser", "user"}
	roleOwner = owner{"role", "Role", "Role", "role"}
)

func (o owner) arn(account, name string) string {
	return "arn:aws:iam::" + account + ":" + o.kind + "/" + name
}

func (o owner) notFound(name string) error {
	return newError(ErrNotFound, "The %s with name %s cannot be found.", o.kind, name)
}

// load returns the owner name of the caller's account, NotFound if absent.
func (s *Service) loadOwner(ctx context.Context, o owner, account, name string) (*Principal, error) {
	p, err := s.principal(ctx, o.arn(account, name))
	if err != nil {
		return nil, err
	}
	if p == nil || p.Type != o.typ {
		return nil, o.notFound(name)
	}
	return p, nil
}

// updateOwner applies fn to the owner's record durably.
func (s *Service) updateOwner(ctx context.Context, o owner, account, name string, fn func(*Principal) error) error {
	return s.updatePrincipal(ctx, o.arn(account, name), name, func(p *Principal) error {
		if p.Type != o.typ {
			return o.notFound(name)
		}
		return fn(p)
	})
}

func (s *Service) putInline(ctx context.Context, c *Caller, o owner, name, policyName, doc string) error {
	if err := s.authorizeIdentity(ctx, c, "iam:Put"+o.Kind+"Policy", o.arn(c.Account, name)); err != nil {
		return err
	}
	if len(doc) > maxIdentityPolicy {
		return newError(ErrLimitExceeded, "Maximum policy size of %d bytes exceeded for %s %s", maxIdentityPolicy, o.kind, name)
	}
	if err := s.validateIdentityPolicy(doc); err != nil {
		return err
	}
	return s.updateOwner(ctx, o, c.Account, name, func(p *Principal) error {
		if p.Policies == nil {
			p.Policies = map[string]string{}
		}
		p.Policies[policyName] = doc
		return nil
	})
}

func (s *Service) getInline(ctx context.Context, c *Caller, o owner, name, policyName string) (string, error) {
	if err := s.authorizeIdentity(ctx, c, "iam:Get"+o.Kind+"Policy", o.arn(c.Account, name)); err != nil {
		return "", err
	}
	p, err := s.loadOwner(ctx, o, c.Account, name)
	if err != nil {
		return "", err
	}
	doc, ok := p.Policies[policyName]
	if !ok {
		return "", newError(ErrNotFound, "The %s policy with name %s cannot be found.", o.kind, policyName)
	}
	return doc, nil
}

func (s *Service) listInline(ctx context.Context, c *Caller, o owner, name string) (*UserPolicyNames, error) {
	if err := s.authorizeIdentity(ctx, c, "iam:List"+o.Kind+"Policies", o.arn(c.Account, name)); err != nil {
		return nil, err
	}
	p, err := s.loadOwner(ctx, o, c.Account, name)
	if err != nil {
		return nil, err
	}
	names := []string{}
	for n := range p.Policies {
		names = append(names, n)
	}
	slices.Sort(names)
	return &UserPolicyNames{PolicyNames: names}, nil
}

func (s *Service) deleteInline(ctx context.Context, c *Caller, o owner, name, policyName string) error {
	if err := s.authorizeIdentity(ctx, c, "iam:Delete"+o.Kind+"Policy", o.arn(c.Account, name)); err != nil {
		return err
	}
	return s.updateOwner(ctx, o, c.Account, name, func(p *Principal) error {
		if _, ok := p.Policies[policyName]; !ok {
			return newError(ErrNotFound, "The %s policy with name %s cannot be found.", o.kind, policyName)
		}
		delete(p.Policies, policyName)
		return nil
	})
}
