package kms

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/keystore"
)

// AWS managed keys.
//
// An alias alias/aws/<service> names a symmetric key that KMS creates, the
// first time the alias is used in an account and Region, for the service
// to protect the caller's resources with: "AWS managed keys … are created,
// managed, and used on your behalf by an AWS service" (AWS KMS developer
// guide, "AWS managed keys"). Using the alias as a KeyId — DescribeKey or a
// cryptographic operation, the only operations that take alias names —
// creates it. The key has KeyManager AWS; its policy is AWS's policy for
// AWS managed keys (managedKeyPolicy); its material rotates every year.
//
// Any <service> matching managedServicePattern is accepted, as AWS accepts
// every service that integrates with it: a platform running Coffer behind
// its own services names them freely. Another shape is NotFoundException,
// the answer for an alias that does not exist.
//
// Creation is one store transaction that puts the key and the alias
// together, the alias only if it is still absent, so that concurrent first
// uses on any number of nodes create exactly one key. The material is made
// and wrapped before the transaction; a loser drops its wrapped material
// and uses the winner's key.

// managedAliasPrefix begins the aliases of AWS managed keys, which
// customers cannot create, change or delete (aliases.go).
const managedAliasPrefix = "alias/aws/"

// managedServicePattern is the shape of <service> in alias/aws/<service>:
// lower-case letters, digits and dashes, as in AWS's service names (s3, ebs,
// rds, lambda, secretsmanager, ssm, elasticfilesystem …) and endpoint
// prefixes. The alias's 256 characters bound its length.
var managedServicePattern = regexp.MustCompile(`^[a-z0-9-]{1,246}$`)

// managedAliasService returns <service> of an alias alias/aws/<service>.
func managedAliasService(name string) (string, bool) {
	svc, ok := strings.CutPrefix(name, managedAliasPrefix)
	if !ok || !managedServicePattern.MatchString(svc) {
		return "", false
	}
	return svc, true
}

// viaServicePrefix is the endpoint prefix through which the service behind
// alias/aws/<service> calls KMS. They are the same name except where
// AWS's documented policies say otherwise: aws/ebs is used through EC2
// ("kms:ViaService": "ec2.<region>.amazonaws.com" in the developer guide's
// aws/ebs policy).
func viaServicePrefix(service string) string {
	if service == "ebs" {
		return "ec2"
	}
	return service
}

// viaService is the kms:ViaService value of a service in region.
func viaService(prefix, region string) string {
	return prefix + "." + region + ".amazonaws.com"
}

// policyStatement and policyDocument give managedKeyPolicy AWS's member
// order when marshalled.
type policyStatement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Principal map[string]string            `json:"Principal"`
	Action    []string                     `json:"Action"`
	Resource  string                       `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

type policyDocument struct {
	Version   string            `json:"Version"`
	Id        string            `json:"Id"`
	Statement []policyStatement `json:"Statement"`
}

// managedKeyPolicy is the key policy of account's AWS managed key for
// service in region, statement for statement the policy AWS publishes for
// AWS managed keys (developer guide, "AWS managed keys" and the aws/ebs
// example, Id "auto-ebs-2"): use of the key only through the service
// (kms:ViaService) by principals of the account (kms:CallerAccount), and
// the key's metadata, policy and grants readable by the account directly —
// its identity policies decide who, as the account-root principal
// delegates to them.
func managedKeyPolicy(account, region, service string) string {
	doc := policyDocument{
		Version: "2012-10-17",
		Id:      "auto-" + service + "-2",
		Statement: []policyStatement{{
			Sid:       "Allow access through " + service + " for all principals in the account that are authorized to use " + service,
			Effect:    "Allow",
			Principal: map[string]string{"AWS": "*"},
			Action: []string{"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
				"kms:CreateGrant", "kms:DescribeKey"},
			Resource: "*",
			Condition: map[string]map[string]string{"StringEquals": {
				"kms:ViaService":    viaService(viaServicePrefix(service), region),
				"kms:CallerAccount": account,
			}},
		}, {
			Sid:       "Allow direct access to key metadata to the account",
			Effect:    "Allow",
			Principal: map[string]string{"AWS": "arn:aws:iam::" + account + ":root"},
			Action:    []string{"kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"},
			Resource:  "*",
		}},
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic("kms: internal error: the managed key policy does not marshal: " + err.Error())
	}
	return string(out)
}

// managedKeyDescription is the Description of an AWS managed key, in the
// words AWS uses for its own ("Default key that protects my EBS volumes
// when no other key is defined").
func managedKeyDescription(service string) string {
	return "Default key that protects my " + service + " resources when no other key is defined"
}

// managedKey returns account's AWS managed key named by alias name, created
// now if the alias is not there yet. The caller has already found the alias
// absent; only the account's own callers create its keys (an alias ARN of
// another account finds that account's key or nothing).
func (s *Service) managedKey(ctx context.Context, c *Caller, account, name string) (*keyRecord, error) {
	service, ok := managedAliasService(name)
	if !ok || account != c.Account {
		return nil, newError(ErrNotFound, "Alias %s is not found.", s.aliasARN(account, name))
	}
	id, err := s.newKeyID()
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	r := &keyRecord{
		ID:                 id,
		Account:            account,
		Region:             s.region,
		Created:            now,
		Description:        managedKeyDescription(service),
		Usage:              UsageEncryptDecrypt,
		Spec:               SpecSymmetric,
		Origin:             OriginAWSKMS,
		Manager:            ManagerAWS,
		State:              StateEnabled,
		Policy:             managedKeyPolicy(account, s.region, service),
		RotationEnabled:    true,
		RotationPeriodDays: defaultRotationDays,
		NextRotation:       now.Add(days(defaultRotationDays)),
	}
	r.prepare()
	if r.compiledPolicy() == nil {
		return nil, internal(errors.New("kms: the managed key policy does not compile"))
	}
	ver, err := s.newVersion(ctx, r, now, "")
	if err != nil {
		return nil, err
	}
	r.Versions = []keyVersion{ver}

	created, err := s.putManagedKey(ctx, r, name, now)
	if err != nil || !created {
		clear(ver.Wrapped) // the winner's material is the key's
	}
	if err != nil {
		return nil, internal(err)
	}
	return s.resolveAlias(ctx, account, name)
}

// putManagedKey stores r and its alias name in one transaction, unless
// the alias exists by then: it reports whether it created them.
func (s *Service) putManagedKey(ctx context.Context, r *keyRecord, name string, now time.Time) (bool, error) {
	// The key is the service's own creation, whatever call named its alias
	// first (a read-only one): its record (CreateKey, an AwsServiceEvent)
	// commits with it through the outbox.
	ctx, event, err := s.serviceEventContext(ctx, "CreateKey")
	if err != nil {
		return false, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	created := false
	err = s.store.Update(ctx, func(tx keystore.Tx) error {
		created = false // Update may run fn again
		event.on(nil)
		a, err := getAliasTx(tx, r.Account, name)
		if err != nil || a != nil {
			return err
		}
		if err := putKeyTx(tx, r); err != nil {
			return err
		}
		created = true
		event.on(r)
		return putAliasTx(tx, &aliasRecord{Account: r.Account, Name: name, Target: r.ID, Created: now, Updated: now})
	})
	s.cache.invalidate(cacheAlias, aliasStoreKey(r.Account, name))
	if err != nil {
		return false, err
	}
	if created {
		s.cache.publishKey(r.ID, r)
	}
	return created, nil
}

// newKeyID is a fresh key ID: a random (version 4) UUID.
func (s *Service) newKeyID() (string, error) {
	b, err := s.randomBytes(16)
	if err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40 // UUID version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	var kid [16]byte
	copy(kid[:], b)
	return formatKeyID(kid), nil
}

// Acting for a service (kms:ViaService).
//
// AWS fills kms:ViaService when one of its services calls KMS on a
// principal's behalf, and a caller cannot set it. Coffer has no services of
// its own: a platform that runs Coffer behind its services, as AWS runs KMS
// behind S3, has each service call Coffer with the requesting principal's
// credentials (or a role session of its own) and say which service it is
// with a header, X-Coffer-Via-Service: <prefix>.<region>.amazonaws.com,
// covered by the request's SigV4 signature. The value is honoured only for
// a caller whose identity policies allow the action coffer:ActAs on
// arn:aws:iam::<account>:service/<prefix> (the account root may, as it may
// every action of its account): without that the request is refused, so
// that no arbitrary caller can claim a service and pass the ViaService
// condition of an AWS managed key's policy.

// ActAsAction is the IAM action that lets a principal present a
// kms:ViaService value, on the resource ActAsResource names.
const ActAsAction = "coffer:ActAs"

// ActAsResource is the resource of ActAsAction for service prefix in
// account.
func ActAsResource(account, prefix string) string {
	return "arn:aws:iam::" + account + ":service/" + prefix
}

var viaServicePattern = regexp.MustCompile(`^([a-z0-9-]{1,63})\.([a-z0-9-]{1,32})\.amazonaws\.com$`)

// ActAs makes via the kms:ViaService of c's requests, if c may act for
// that service in this Region. A value of another shape or Region is a
// ValidationException; a caller not allowed is AccessDeniedException.
func (s *Service) ActAs(ctx context.Context, c *Caller, via string) error {
	m := viaServicePattern.FindStringSubmatch(via)
	if m == nil {
		return newError(ErrValidation, "X-Coffer-Via-Service %q is not a service endpoint of the form <service>.<region>.amazonaws.com.", truncate(via))
	}
	if m[2] != s.region {
		return newError(ErrValidation, "X-Coffer-Via-Service %q names Region %s; this endpoint serves %s.", truncate(via), m[2], s.region)
	}
	if err := s.authorizeIdentity(ctx, c, ActAsAction, ActAsResource(c.Account, m[1])); err != nil {
		return err
	}
	c.viaService = via
	return nil
}
