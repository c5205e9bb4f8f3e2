package kms

import (
	"context"
	"fmt"
	"slices"
)

// The operation catalogue: one row per operation Coffer serves, holding
// every fact about it that more than one place needs — the IAM action, the
// grant operation, the key usages and states it accepts, which forms of
// KeyId it takes, CloudTrail's readOnly flag and the request and response
// members its audit record may carry. The server builds its dispatch, its
// audit parameters and its metrics from it; grants read their operations
// from it; the fuzzers range over it. A new operation is a new row.
//
// Sources: botocore's kms/2014-11-01 model (each KeyId member's
// documentation gives the forms), the key-state table of AWS's developer
// guide, and CloudTrail's records of KMS events (readOnly, members).

// API is the protocol an operation is served under.
type API uint8

const (
	APIKMS   API = iota // AWS JSON 1.1, X-Amz-Target TrentService.<Name>
	APIAdmin            // Coffer's administration API, X-Amz-Target CofferAdmin.<Name>
	APISTS              // AWS's Query protocol for STS, Action=<Name>
)

// KeyIDForms are the ways a request member may name a key.
type KeyIDForms uint8

const (
	FormKeyID     KeyIDForms = 1 << iota // 1234abcd-12ab-34cd-56ef-1234567890ab
	FormKeyARN                           // arn:aws:kms:<region>:<account>:key/<id>
	FormAliasName                        // alias/<name>
	FormAliasARN                         // arn:aws:kms:<region>:<account>:alias/<name>

	// KeyOnly is what the management operations accept.
	KeyOnly = FormKeyID | FormKeyARN
	// AnyKeyForm is what the cryptographic operations and DescribeKey accept.
	AnyKeyForm = KeyOnly | FormAliasName | FormAliasARN
)

// KeyMember describes one request member that names a KMS key, and what the
// operation requires of that key.
type KeyMember struct {
	Member       string     // the request member: "KeyId", "DestinationKeyId", …
	Action       string     // the IAM action authorized on the key
	Grant        string     // the grant operation that can allow Action; "" when none can
	Forms        KeyIDForms // the forms of key identifier the member accepts
	CrossAccount bool       // whether a key of another account may be named (by ARN)
	Usages       []string   // the key usages accepted; nil accepts any
	States       []string   // the key states in which the operation proceeds
	// Disabled reports that a key refused for being Disabled is answered
	// DisabledException rather than KMSInvalidStateException.
	Disabled bool
	// ReplicaDeletionDisabled reports that a multi-Region primary key
	// refused for being PendingReplicaDeletion is answered
	// DisabledException (the key-state table's footnote [2], in the rows
	// that read "✗[2/3]") rather than KMSInvalidStateException ([3]).
	ReplicaDeletionDisabled bool
}

// Operation is one row of the catalogue.
type Operation struct {
	Name string // as in X-Amz-Target after the service prefix, or STS's Action
	API  API
	// Action is the IAM action of an operation authorized by identity
	// policies alone (CreateKey, ListKeys, the administration API …); the
	// key operations carry theirs in Keys. ReEncrypt has two.
	Action   string
	Keys     []KeyMember
	ReadOnly bool // CloudTrail's readOnly
	// TracksLastUse marks AWS's KeyLastUsageTrackingOperation values: a
	// successful call updates GetKeyLastUsage of its keys.
	TracksLastUse bool
	// Request and Response are the members the audit record may carry: an
	// allow-list, so that a member added to an input never reaches the
	// trail unless it is named here. Plaintexts, ciphertexts, messages,
	// MACs, signatures, tokens, passwords and secrets never are.
	Request  []string
	Response []string
	// Secrets are the request members (byte blobs) that carry a secret —
	// Encrypt's plaintext, often a key — which the transport zeroes in the
	// decoded input once the operation has succeeded. Never audited.
	Secrets []string
	// ConditionKeys are the condition keys that the request context of the
	// operation's key authorization carries (each of ReEncrypt's two), of
	// those AWS documents for it: the developer guide's "AWS KMS condition
	// keys" (docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html)
	// and the operation's API reference. A key AWS documents that Coffer
	// does not fill yet is left out. "kms:EncryptionContext:" stands for
	// every kms:EncryptionContext:<key>, "aws:ResourceTag/" and
	// "aws:RequestTag/" for every tag key. kms:RequestAlias is listed where
	// the key may be named by alias (and is present when it is). The keys
	// about the caller (aws:PrincipalArn, aws:username, aws:userid,
	// sts:RoleSessionName …) are on every request and not listed:
	// TestIdentityConditionKeys covers them. TestConditionKeysInContext
	// holds the list to the code; for an operation with no key member
	// (CreateKey) the keys are those of its identity-policy authorization.
	ConditionKeys []string
	// Quota is the request quota AWS applies to the operation (quota.go).
	Quota Quota
}

// Key returns the row's key member named member (nil when it has none).
func (o *Operation) Key(member string) *KeyMember {
	for i := range o.Keys {
		if o.Keys[i].Member == member {
			return &o.Keys[i]
		}
	}
	return nil
}

// Audited reports whether request member m of o may be audited.
func (o *Operation) Audited(m string) bool { return slices.Contains(o.Request, m) }

// AuditedResponse reports whether response member m of o may be audited.
func (o *Operation) AuditedResponse(m string) bool { return slices.Contains(o.Response, m) }

// Key states sets, as AWS's key-state table has them.
var (
	// The table has one column for PendingDeletion and PendingReplicaDeletion.
	allStates          = []string{StateEnabled, StateDisabled, StatePendingDeletion, StatePendingReplicaDeletion, StatePendingImport, StateUnavailable}
	notPendingDeletion = []string{StateEnabled, StateDisabled, StatePendingImport, StateUnavailable}
	pendingDeletion    = []string{StatePendingDeletion, StatePendingReplicaDeletion}
	enabledOnly        = []string{StateEnabled}
	encryptDecrypt     = []string{UsageEncryptDecrypt}
)

// cryptoKey is the key member of the symmetric cryptographic operations.
func cryptoKey(member, op string) KeyMember {
	return KeyMember{Member: member, Action: "kms:" + op, Grant: op, Forms: AnyKeyForm, CrossAccount: true,
		Usages: encryptDecrypt, States: enabledOnly, Disabled: true, ReplicaDeletionDisabled: true}
}

// dataPlaneKey is the key member of an asymmetric or HMAC operation: usable
// only while Enabled, by any form of KeyId, across accounts, with a key of
// one of usages (nil: any).
func dataPlaneKey(member, op string, usages ...string) KeyMember {
	return KeyMember{Member: member, Action: "kms:" + op, Grant: op, Forms: AnyKeyForm, CrossAccount: true,
		Usages: usages, States: enabledOnly, Disabled: true, ReplicaDeletionDisabled: true}
}

// manageKey is the KeyId member of an operation that manages a key of the
// caller's own account.
func manageKey(op string, states []string) KeyMember {
	return KeyMember{Member: "KeyId", Action: "kms:" + op, Forms: KeyOnly, States: states}
}

// Condition keys of the key resource operations (the permissions
// reference's "Conditions for KMS key operations", kms:ViaService among
// them, present when the caller acts for a service: managed.go), and of
// the symmetric cryptographic ones.
var (
	keyConditions = []string{"kms:CallerAccount", "kms:KeySpec", "kms:KeyUsage", "kms:KeyOrigin", "kms:MultiRegion", "kms:MultiRegionKeyType",
		"kms:ResourceAliases", "aws:ResourceTag/", "kms:ViaService"}
	cryptoConditions = append(slices.Clip(keyConditions), "kms:EncryptionAlgorithm", "kms:EncryptionContext:", "kms:EncryptionContextKeys", "kms:RequestAlias")
)

func conditions(base []string, more ...string) []string { return append(slices.Clip(base), more...) }

var (
	listMembers = []string{"Limit", "Marker"}

	// Cryptographic operations.
	opEncrypt = &Operation{ConditionKeys: cryptoConditions,
		Name: "Encrypt", TracksLastUse: true, Quota: cryptographic, ReadOnly: true,
		Keys:    []KeyMember{cryptoKey("KeyId", "Encrypt")},
		Request: []string{"KeyId", "EncryptionContext", "EncryptionAlgorithm"},
		Secrets: []string{"Plaintext"}}
	opDecrypt = &Operation{ConditionKeys: cryptoConditions,
		Name: "Decrypt", TracksLastUse: true, Quota: cryptographic, ReadOnly: true,
		Keys:    []KeyMember{cryptoKey("KeyId", "Decrypt")},
		Request: []string{"KeyId", "EncryptionContext", "EncryptionAlgorithm"}}
	opReEncrypt = &Operation{ConditionKeys: conditions(cryptoConditions, "kms:ReEncryptOnSameKey"),
		Name: "ReEncrypt", TracksLastUse: true, Quota: cryptographic, ReadOnly: true,
		Keys: []KeyMember{cryptoKey("SourceKeyId", "ReEncryptFrom"), cryptoKey("DestinationKeyId", "ReEncryptTo")},
		Request: []string{"SourceKeyId", "DestinationKeyId", "SourceEncryptionContext", "DestinationEncryptionContext",
			"SourceEncryptionAlgorithm", "DestinationEncryptionAlgorithm", "DryRun"}}
	opGenerateDataKey = &Operation{ConditionKeys: cryptoConditions,
		Name: "GenerateDataKey", TracksLastUse: true, Quota: cryptographic, ReadOnly: true,
		Keys:    []KeyMember{cryptoKey("KeyId", "GenerateDataKey")},
		Request: []string{"KeyId", "EncryptionContext", "NumberOfBytes", "KeySpec"}}
	opGenerateDataKeyWithoutPlaintext = &Operation{ConditionKeys: cryptoConditions,
		Name: "GenerateDataKeyWithoutPlaintext", TracksLastUse: true, Quota: cryptographic, ReadOnly: true,
		Keys:    []KeyMember{cryptoKey("KeyId", "GenerateDataKeyWithoutPlaintext")},
		Request: []string{"KeyId", "EncryptionContext", "NumberOfBytes", "KeySpec"}}

	// Asymmetric and HMAC operations: data-plane operations, readOnly in
	// CloudTrail like Encrypt; every KeyId takes the four forms ("To
	// specify a KMS key, use its key ID, key ARN, alias name, or alias
	// ARN", botocore) and may name another account's key (reference §1.5).
	opSign = &Operation{ConditionKeys: conditions(keyConditions, "kms:SigningAlgorithm", "kms:MessageType", "kms:RequestAlias"),
		Name: "Sign", TracksLastUse: true, ReadOnly: true,
		Keys:     []KeyMember{dataPlaneKey("KeyId", "Sign", UsageSignVerify)},
		Request:  []string{"KeyId", "MessageType", "SigningAlgorithm", "DryRun"},
		Response: []string{"KeyId", "SigningAlgorithm"}}
	opVerify = &Operation{ConditionKeys: conditions(keyConditions, "kms:SigningAlgorithm", "kms:MessageType", "kms:RequestAlias"),
		Name: "Verify", TracksLastUse: true, ReadOnly: true,
		Keys:     []KeyMember{dataPlaneKey("KeyId", "Verify", UsageSignVerify)},
		Request:  []string{"KeyId", "MessageType", "SigningAlgorithm", "DryRun"},
		Response: []string{"KeyId", "SignatureValid", "SigningAlgorithm"}}
	opGetPublicKey = &Operation{ConditionKeys: conditions(keyConditions, "kms:RequestAlias"),
		Name: "GetPublicKey", ReadOnly: true,
		// Any usage: symmetric and HMAC keys are refused by the method
		// with UnsupportedOperationException.
		Keys:     []KeyMember{dataPlaneKey("KeyId", "GetPublicKey")},
		Request:  []string{"KeyId"},
		Response: []string{"KeyId", "KeySpec", "KeyUsage"}}
	opGenerateMac = &Operation{ConditionKeys: conditions(keyConditions, "kms:MacAlgorithm", "kms:RequestAlias"),
		Name: "GenerateMac", TracksLastUse: true, Quota: cryptographic, ReadOnly: true,
		Keys:     []KeyMember{dataPlaneKey("KeyId", "GenerateMac", UsageGenerateVerifyMAC)},
		Request:  []string{"KeyId", "MacAlgorithm", "DryRun"},
		Response: []string{"KeyId", "MacAlgorithm"}}
	opVerifyMac = &Operation{ConditionKeys: conditions(keyConditions, "kms:MacAlgorithm", "kms:RequestAlias"),
		Name: "VerifyMac", TracksLastUse: true, Quota: cryptographic, ReadOnly: true,
		Keys:     []KeyMember{dataPlaneKey("KeyId", "VerifyMac", UsageGenerateVerifyMAC)},
		Request:  []string{"KeyId", "MacAlgorithm", "DryRun"},
		Response: []string{"KeyId", "MacValid", "MacAlgorithm"}}
	opDeriveSharedSecret = &Operation{ConditionKeys: conditions(keyConditions, "kms:KeyAgreementAlgorithm", "kms:RequestAlias"),
		Name: "DeriveSharedSecret", TracksLastUse: true, ReadOnly: true,
		Keys:     []KeyMember{dataPlaneKey("KeyId", "DeriveSharedSecret", UsageKeyAgreement)},
		Request:  []string{"KeyId", "KeyAgreementAlgorithm", "DryRun"},
		Response: []string{"KeyId", "KeyAgreementAlgorithm", "KeyOrigin"}}
	opGenerateDataKeyPair = &Operation{ConditionKeys: conditions(cryptoConditions, "kms:DataKeyPairSpec"),
		Name: "GenerateDataKeyPair", TracksLastUse: true, ReadOnly: true,
		Keys:     []KeyMember{cryptoKey("KeyId", "GenerateDataKeyPair")},
		Request:  []string{"KeyId", "EncryptionContext", "KeyPairSpec", "DryRun"},
		Response: []string{"KeyId", "KeyPairSpec"}}
	opGenerateDataKeyPairWithoutPlaintext = &Operation{ConditionKeys: conditions(cryptoConditions, "kms:DataKeyPairSpec"),
		Name: "GenerateDataKeyPairWithoutPlaintext", TracksLastUse: true, ReadOnly: true,
		Keys:     []KeyMember{cryptoKey("KeyId", "GenerateDataKeyPairWithoutPlaintext")},
		Request:  []string{"KeyId", "EncryptionContext", "KeyPairSpec", "DryRun"},
		Response: []string{"KeyId", "KeyPairSpec"}}
	opGenerateRandom = &Operation{Name: "GenerateRandom", Quota: cryptographic, Action: "kms:GenerateRandom", ReadOnly: true,
		Request: []string{"NumberOfBytes", "CustomKeyStoreId"}}

	// Keys.
	opCreateKey = &Operation{ConditionKeys: []string{"kms:CallerAccount", "kms:KeySpec", "kms:KeyUsage", "kms:KeyOrigin",
		"kms:MultiRegion", "kms:MultiRegionKeyType", "kms:BypassPolicyLockoutSafetyCheck", "aws:RequestTag/", "aws:TagKeys", "kms:ViaService"},
		Name: "CreateKey", Quota: perSecond(50), Action: "kms:CreateKey",
		Request: []string{"Policy", "Description", "KeyUsage", "CustomerMasterKeySpec", "KeySpec", "Origin", "CustomKeyStoreId",
			"BypassPolicyLockoutSafetyCheck", "Tags", "MultiRegion", "XksKeyId"},
		Response: []string{"KeyMetadata"}}
	opDescribeKey = &Operation{ConditionKeys: conditions(keyConditions, "kms:RequestAlias"),
		Name: "DescribeKey", Quota: perSecond(2000), ReadOnly: true,
		Keys: []KeyMember{{Member: "KeyId", Action: "kms:DescribeKey", Grant: "DescribeKey", Forms: AnyKeyForm,
			CrossAccount: true, States: allStates}},
		Request: []string{"KeyId"}}
	opListKeys  = &Operation{Name: "ListKeys", Quota: perSecond(500), Action: "kms:ListKeys", ReadOnly: true, Request: listMembers}
	opEnableKey = &Operation{ConditionKeys: keyConditions,
		Name: "EnableKey", Quota: perSecond(5),
		Keys:    []KeyMember{manageKey("EnableKey", []string{StateEnabled, StateDisabled, StateUnavailable})},
		Request: []string{"KeyId"}}
	opDisableKey = &Operation{ConditionKeys: keyConditions,
		Name: "DisableKey", Quota: perSecond(5),
		Keys:    []KeyMember{manageKey("DisableKey", []string{StateEnabled, StateDisabled, StateUnavailable})},
		Request: []string{"KeyId"}}
	opUpdateKeyDescription = &Operation{ConditionKeys: keyConditions,
		Name: "UpdateKeyDescription", Quota: perSecond(5),
		Keys:    []KeyMember{manageKey("UpdateKeyDescription", notPendingDeletion)},
		Request: []string{"KeyId", "Description"}}
	opScheduleKeyDeletion = &Operation{ConditionKeys: conditions(keyConditions, "kms:ScheduleKeyDeletionPendingWindowInDays"),
		Name: "ScheduleKeyDeletion", Quota: perSecond(5),
		Keys:     []KeyMember{manageKey("ScheduleKeyDeletion", notPendingDeletion)},
		Request:  []string{"KeyId", "PendingWindowInDays"},
		Response: []string{"KeyId", "DeletionDate", "KeyState", "PendingWindowInDays"}}
	opCancelKeyDeletion = &Operation{ConditionKeys: keyConditions,
		Name: "CancelKeyDeletion", Quota: perSecond(5),
		Keys:     []KeyMember{manageKey("CancelKeyDeletion", pendingDeletion)},
		Request:  []string{"KeyId"},
		Response: []string{"KeyId"}}

	// Rotation: AWS refuses imported and custom-key-store keys with
	// UnsupportedOperationException before it looks at the state.
	opEnableKeyRotation = &Operation{ConditionKeys: conditions(keyConditions, "kms:RotationPeriodInDays"),
		Name: "EnableKeyRotation", Quota: perSecond(5),
		Keys:    []KeyMember{rotationKey("EnableKeyRotation")},
		Request: []string{"KeyId", "RotationPeriodInDays"}}
	opDisableKeyRotation = &Operation{ConditionKeys: keyConditions,
		Name: "DisableKeyRotation", Quota: perSecond(5),
		Keys:    []KeyMember{rotationKey("DisableKeyRotation")},
		Request: []string{"KeyId"}}
	opRotateKeyOnDemand = &Operation{ConditionKeys: keyConditions,
		Name: "RotateKeyOnDemand", Quota: perSecond(5),
		Keys:     []KeyMember{rotationKey("RotateKeyOnDemand")},
		Request:  []string{"KeyId"},
		Response: []string{"KeyId"}}
	opGetKeyRotationStatus = &Operation{ConditionKeys: keyConditions,
		Name: "GetKeyRotationStatus", Quota: perSecond(1000), ReadOnly: true,
		Keys: []KeyMember{{Member: "KeyId", Action: "kms:GetKeyRotationStatus", Forms: KeyOnly, CrossAccount: true,
			States: allStates}},
		Request: []string{"KeyId"}}
	// Imported key material: management operations on a key of the
	// caller's own account, by key ID or key ARN. CloudTrail records
	// keyId, wrappingAlgorithm and wrappingKeySpec, never the import token,
	// the public key or the encrypted material. The request's own condition
	// keys are the developer guide's: kms:WrappingAlgorithm and
	// kms:WrappingKeySpec, kms:ExpirationModel and kms:ValidTo (import.go).
	opGetParametersForImport = &Operation{ConditionKeys: conditions(keyConditions, "kms:WrappingAlgorithm", "kms:WrappingKeySpec"),
		Name: "GetParametersForImport", Quota: perSecond(5),
		Keys:    []KeyMember{manageKey("GetParametersForImport", importStates)},
		Request: []string{"KeyId", "WrappingAlgorithm", "WrappingKeySpec"}}
	opImportKeyMaterial = &Operation{ConditionKeys: conditions(keyConditions, "kms:ExpirationModel", "kms:ValidTo"),
		Name: "ImportKeyMaterial", Quota: perSecond(5),
		Keys: []KeyMember{manageKey("ImportKeyMaterial", importStates)},
		Request: []string{"KeyId", "ValidTo", "ExpirationModel", "ImportType", "KeyMaterialDescription",
			"KeyMaterialId"},
		Response: []string{"KeyId", "KeyMaterialId"}}
	opDeleteImportedKeyMaterial = &Operation{ConditionKeys: keyConditions,
		Name: "DeleteImportedKeyMaterial", Quota: perSecond(5),
		Keys:     []KeyMember{manageKey("DeleteImportedKeyMaterial", allStates)},
		Request:  []string{"KeyId", "KeyMaterialId"},
		Response: []string{"KeyId", "KeyMaterialId"}}
	// GetKeyLastUsage (lastusage.go): the caller's own keys, in any state.
	opGetKeyLastUsage = &Operation{ConditionKeys: keyConditions,
		Name: "GetKeyLastUsage", Quota: perSecond(100), ReadOnly: true,
		Keys:     []KeyMember{manageKey("GetKeyLastUsage", allStates)},
		Request:  []string{"KeyId"},
		Response: []string{"KeyId", "KeyCreationDate", "TrackingStartDate"}}

	// Multi-Region keys (mrk.go): management of a primary key of the
	// caller's own account, by key ID or key ARN, while Enabled (the
	// key-state table: Disabled is DisabledException).
	opReplicateKey = &Operation{ConditionKeys: conditions(keyConditions, "kms:ReplicaRegion"),
		Name: "ReplicateKey", Quota: perSecond(5),
		Keys:     []KeyMember{{Member: "KeyId", Action: "kms:ReplicateKey", Forms: KeyOnly, States: enabledOnly, Disabled: true, ReplicaDeletionDisabled: true}},
		Request:  []string{"KeyId", "ReplicaRegion", "Policy", "BypassPolicyLockoutSafetyCheck", "Description", "Tags"},
		Response: []string{"ReplicaKeyMetadata", "ReplicaPolicy", "ReplicaTags"}}
	opUpdatePrimaryRegion = &Operation{ConditionKeys: conditions(keyConditions, "kms:PrimaryRegion"),
		Name: "UpdatePrimaryRegion", Quota: perSecond(5),
		Keys:    []KeyMember{{Member: "KeyId", Action: "kms:UpdatePrimaryRegion", Forms: KeyOnly, States: enabledOnly, Disabled: true, ReplicaDeletionDisabled: true}},
		Request: []string{"KeyId", "PrimaryRegion"}}

	opListKeyRotations = &Operation{ConditionKeys: keyConditions,
		Name: "ListKeyRotations", Quota: perSecond(100), ReadOnly: true,
		Keys:    []KeyMember{manageKey("ListKeyRotations", allStates)},
		Request: append([]string{"KeyId", "IncludeKeyMaterial"}, listMembers...)}

	// Key policies and tags.
	opGetKeyPolicy = &Operation{ConditionKeys: keyConditions,
		Name: "GetKeyPolicy", Quota: perSecond(1000), ReadOnly: true,
		Keys:    []KeyMember{manageKey("GetKeyPolicy", allStates)},
		Request: []string{"KeyId", "PolicyName"}}
	opPutKeyPolicy = &Operation{ConditionKeys: conditions(keyConditions, "kms:BypassPolicyLockoutSafetyCheck"),
		Name: "PutKeyPolicy", Quota: perSecond(5),
		Keys:    []KeyMember{manageKey("PutKeyPolicy", allStates)},
		Request: []string{"KeyId", "PolicyName", "Policy", "BypassPolicyLockoutSafetyCheck"}}
	opListKeyPolicies = &Operation{ConditionKeys: keyConditions,
		Name: "ListKeyPolicies", Quota: perSecond(100), ReadOnly: true,
		Keys:    []KeyMember{manageKey("ListKeyPolicies", allStates)},
		Request: append([]string{"KeyId"}, listMembers...)}
	opTagResource = &Operation{ConditionKeys: conditions(keyConditions, "aws:RequestTag/", "aws:TagKeys"),
		Name: "TagResource", Quota: perSecond(10),
		Keys:    []KeyMember{manageKey("TagResource", notPendingDeletion)},
		Request: []string{"KeyId", "Tags"}}
	opUntagResource = &Operation{ConditionKeys: conditions(keyConditions, "aws:TagKeys"),
		Name: "UntagResource", Quota: perSecond(10),
		Keys:    []KeyMember{manageKey("UntagResource", notPendingDeletion)},
		Request: []string{"KeyId", "TagKeys"}}
	opListResourceTags = &Operation{ConditionKeys: keyConditions,
		Name: "ListResourceTags", Quota: perSecond(50), ReadOnly: true,
		Keys:    []KeyMember{manageKey("ListResourceTags", allStates)},
		Request: append([]string{"KeyId"}, listMembers...)}

	// Aliases: permission on the alias (identity policies) and on the key.
	opCreateAlias = &Operation{ConditionKeys: keyConditions,
		Name: "CreateAlias", Quota: perSecond(5), Action: "kms:CreateAlias",
		Keys:    []KeyMember{aliasTargetKey("CreateAlias")},
		Request: []string{"AliasName", "TargetKeyId"}}
	opUpdateAlias = &Operation{ConditionKeys: keyConditions,
		Name: "UpdateAlias", Quota: perSecond(5), Action: "kms:UpdateAlias",
		Keys:    []KeyMember{aliasTargetKey("UpdateAlias")},
		Request: []string{"AliasName", "TargetKeyId"}}
	opDeleteAlias = &Operation{Name: "DeleteAlias", Quota: perSecond(5), Action: "kms:DeleteAlias",
		Request: []string{"AliasName"}}
	opListAliases = &Operation{Name: "ListAliases", Quota: perSecond(500), Action: "kms:ListAliases", ReadOnly: true,
		Request: append([]string{"KeyId"}, listMembers...)}

	// Grants.
	opCreateGrant = &Operation{ConditionKeys: conditions(keyConditions, "kms:EncryptionContext:", "kms:EncryptionContextKeys", "kms:GrantConstraintType", "kms:GrantIsForAWSResource", "kms:GrantOperations", "kms:GranteePrincipal", "kms:RetiringPrincipal"),
		Name: "CreateGrant", Quota: perSecond(50),
		Keys: []KeyMember{{Member: "KeyId", Action: "kms:CreateGrant", Grant: "CreateGrant", Forms: KeyOnly, CrossAccount: true,
			States: []string{StateEnabled, StateUnavailable}, Disabled: true, ReplicaDeletionDisabled: true}},
		Request: []string{"KeyId", "GranteePrincipal", "RetiringPrincipal", "Operations", "Constraints", "Name", "DryRun"}}
	opListGrants = &Operation{ConditionKeys: keyConditions,
		Name: "ListGrants", Quota: perSecond(100), ReadOnly: true,
		Keys: []KeyMember{{Member: "KeyId", Action: "kms:ListGrants", Forms: KeyOnly, CrossAccount: true,
			States: allStates}},
		Request: append([]string{"KeyId", "GrantId", "GranteePrincipal"}, listMembers...)}
	opListRetirableGrants = &Operation{Name: "ListRetirableGrants", Quota: perSecond(100), Action: "kms:ListRetirableGrants", ReadOnly: true,
		Request: append([]string{"RetiringPrincipal"}, listMembers...)}
	opRetireGrant = &Operation{ConditionKeys: keyConditions,
		Name: "RetireGrant", Quota: perSecond(30),
		// Authorized by the grant itself (its retiring principal, or its
		// grantee when it includes RetireGrant) or by kms:RetireGrant in
		// identity policies, never in a key policy: see retireAllowed.
		Keys: []KeyMember{{Member: "KeyId", Action: "kms:RetireGrant", Grant: "RetireGrant", Forms: KeyOnly, CrossAccount: true,
			States: allStates}},
		Request: []string{"KeyId", "GrantId", "DryRun"}}
	opRevokeGrant = &Operation{ConditionKeys: keyConditions,
		Name: "RevokeGrant", Quota: perSecond(30),
		Keys: []KeyMember{{Member: "KeyId", Action: "kms:RevokeGrant", Forms: KeyOnly, CrossAccount: true,
			States: allStates}},
		Request: []string{"KeyId", "GrantId", "DryRun"}}

	// Custom key stores: identity policies only.
	opCreateCustomKeyStore = &Operation{Name: "CreateCustomKeyStore", Quota: perSecond(5), Action: "kms:CreateCustomKeyStore",
		Request: []string{"CustomKeyStoreName", "CloudHsmClusterId", "TrustAnchorCertificate", "CustomKeyStoreType", "XksProxyUriEndpoint"}}
	opDescribeCustomKeyStores = &Operation{Name: "DescribeCustomKeyStores", Quota: perSecond(5), Action: "kms:DescribeCustomKeyStores", ReadOnly: true,
		Request: append([]string{"CustomKeyStoreId", "CustomKeyStoreName"}, listMembers...)}
	opUpdateCustomKeyStore = &Operation{Name: "UpdateCustomKeyStore", Quota: perSecond(5), Action: "kms:UpdateCustomKeyStore",
		Request: []string{"CustomKeyStoreId", "NewCustomKeyStoreName", "CloudHsmClusterId", "XksProxyUriEndpoint"}}
	opConnectCustomKeyStore = &Operation{Name: "ConnectCustomKeyStore", Quota: perSecond(5), Action: "kms:ConnectCustomKeyStore",
		Request: []string{"CustomKeyStoreId"}}
	opDisconnectCustomKeyStore = &Operation{Name: "DisconnectCustomKeyStore", Quota: perSecond(5), Action: "kms:DisconnectCustomKeyStore",
		Request: []string{"CustomKeyStoreId"}}
	opDeleteCustomKeyStore = &Operation{Name: "DeleteCustomKeyStore", Quota: perSecond(5), Action: "kms:DeleteCustomKeyStore",
		Request: []string{"CustomKeyStoreId"}}

	// Administration (IAM's shapes and actions).
	opCreateUser       = admin("CreateUser", "iam:CreateUser", false, "UserName")
	opListUsers        = admin("ListUsers", "iam:ListUsers", true)
	opDeleteUser       = admin("DeleteUser", "iam:DeleteUser", false, "UserName")
	opCreateAccessKey  = admin("CreateAccessKey", "iam:CreateAccessKey", false, "UserName")
	opListAccessKeys   = admin("ListAccessKeys", "iam:ListAccessKeys", true, "UserName")
	opDeleteAccessKey  = admin("DeleteAccessKey", "iam:DeleteAccessKey", false, "AccessKeyId")
	opPutUserPolicy    = admin("PutUserPolicy", "iam:PutUserPolicy", false, "UserName", "PolicyName", "PolicyDocument")
	opGetUserPolicy    = admin("GetUserPolicy", "iam:GetUserPolicy", true, "UserName", "PolicyName")
	opListUserPolicies = admin("ListUserPolicies", "iam:ListUserPolicies", true, "UserName")
	opDeleteUserPolicy = admin("DeleteUserPolicy", "iam:DeleteUserPolicy", false, "UserName", "PolicyName")
	opGetUsage         = admin("GetUsage", "coffer:GetUsage", true)
	opGetStatus        = admin("GetStatus", "coffer:GetStatus", true)

	opCreateRole             = admin("CreateRole", "iam:CreateRole", false, "RoleName", "AssumeRolePolicyDocument", "Description", "MaxSessionDuration")
	opGetRole                = admin("GetRole", "iam:GetRole", true, "RoleName")
	opListRoles              = admin("ListRoles", "iam:ListRoles", true)
	opDeleteRole             = admin("DeleteRole", "iam:DeleteRole", false, "RoleName")
	opUpdateAssumeRolePolicy = admin("UpdateAssumeRolePolicy", "iam:UpdateAssumeRolePolicy", false, "RoleName", "PolicyDocument")
	opPutRolePolicy          = admin("PutRolePolicy", "iam:PutRolePolicy", false, "RoleName", "PolicyName", "PolicyDocument")
	opGetRolePolicy          = admin("GetRolePolicy", "iam:GetRolePolicy", true, "RoleName", "PolicyName")
	opListRolePolicies       = admin("ListRolePolicies", "iam:ListRolePolicies", true, "RoleName")
	opDeleteRolePolicy       = admin("DeleteRolePolicy", "iam:DeleteRolePolicy", false, "RoleName", "PolicyName")

	// STS: AssumeRole is authorized by the role's trust policy.
	opAssumeRole        = &Operation{Name: "AssumeRole", API: APISTS, Action: "sts:AssumeRole", Request: []string{"RoleArn", "RoleSessionName", "DurationSeconds"}}
	opGetCallerIdentity = &Operation{Name: "GetCallerIdentity", API: APISTS, ReadOnly: true}
)

func rotationKey(op string) KeyMember {
	return KeyMember{Member: "KeyId", Action: "kms:" + op, Forms: KeyOnly, Usages: encryptDecrypt, States: enabledOnly, Disabled: true}
}

// aliasTargetKey is the TargetKeyId of CreateAlias and UpdateAlias: a key ID
// or key ARN of the caller's account, not pending deletion.
func aliasTargetKey(op string) KeyMember {
	return KeyMember{Member: "TargetKeyId", Action: "kms:" + op, Forms: KeyOnly, States: notPendingDeletion}
}

func admin(name, action string, readOnly bool, request ...string) *Operation {
	return &Operation{Name: name, API: APIAdmin, Action: action, ReadOnly: readOnly, Request: request}
}

// catalogue lists every row, in no particular order.
var catalogue = []*Operation{
	opEncrypt, opDecrypt, opReEncrypt, opGenerateDataKey, opGenerateDataKeyWithoutPlaintext, opGenerateRandom,
	opSign, opVerify, opGetPublicKey, opGenerateMac, opVerifyMac, opDeriveSharedSecret,
	opGenerateDataKeyPair, opGenerateDataKeyPairWithoutPlaintext,
	opCreateKey, opDescribeKey, opListKeys, opEnableKey, opDisableKey, opUpdateKeyDescription,
	opScheduleKeyDeletion, opCancelKeyDeletion,
	opEnableKeyRotation, opDisableKeyRotation, opRotateKeyOnDemand, opGetKeyRotationStatus, opListKeyRotations,
	opGetParametersForImport, opImportKeyMaterial, opDeleteImportedKeyMaterial, opGetKeyLastUsage,
	opReplicateKey, opUpdatePrimaryRegion,
	opGetKeyPolicy, opPutKeyPolicy, opListKeyPolicies, opTagResource, opUntagResource, opListResourceTags,
	opCreateAlias, opUpdateAlias, opDeleteAlias, opListAliases,
	opCreateGrant, opListGrants, opListRetirableGrants, opRetireGrant, opRevokeGrant,
	opCreateCustomKeyStore, opDescribeCustomKeyStores, opUpdateCustomKeyStore, opConnectCustomKeyStore,
	opDisconnectCustomKeyStore, opDeleteCustomKeyStore,
	opCreateUser, opListUsers, opDeleteUser, opCreateAccessKey, opListAccessKeys, opDeleteAccessKey,
	opPutUserPolicy, opGetUserPolicy, opListUserPolicies, opDeleteUserPolicy, opGetUsage, opGetStatus,
	opCreateRole, opGetRole, opListRoles, opDeleteRole, opUpdateAssumeRolePolicy,
	opPutRolePolicy, opGetRolePolicy, opListRolePolicies, opDeleteRolePolicy,
	opAssumeRole, opGetCallerIdentity,
}

// AWSOperations are the operations of AWS's current KMS model (botocore's
// kms/2014-11-01 service-2.json, 54 operations), whether Coffer serves them
// or not. One the catalogue has no APIKMS row for is answered
// UnsupportedOperationException naming it, not UnknownOperationException;
// a row added for it serves it. TestAWSOperations holds the list to the
// model where a copy of it is at hand.
var AWSOperations = []string{
	"CancelKeyDeletion", "ConnectCustomKeyStore", "CreateAlias", "CreateCustomKeyStore", "CreateGrant", "CreateKey",
	"Decrypt", "DeleteAlias", "DeleteCustomKeyStore", "DeleteImportedKeyMaterial", "DeriveSharedSecret",
	"DescribeCustomKeyStores", "DescribeKey", "DisableKey", "DisableKeyRotation", "DisconnectCustomKeyStore",
	"EnableKey", "EnableKeyRotation", "Encrypt", "GenerateDataKey", "GenerateDataKeyPair",
	"GenerateDataKeyPairWithoutPlaintext", "GenerateDataKeyWithoutPlaintext", "GenerateMac", "GenerateRandom",
	"GetKeyLastUsage", "GetKeyPolicy", "GetKeyRotationStatus", "GetParametersForImport", "GetPublicKey",
	"ImportKeyMaterial", "ListAliases", "ListGrants", "ListKeyPolicies", "ListKeyRotations", "ListKeys",
	"ListResourceTags", "ListRetirableGrants", "PutKeyPolicy", "ReEncrypt", "ReplicateKey", "RetireGrant",
	"RevokeGrant", "RotateKeyOnDemand", "ScheduleKeyDeletion", "Sign", "TagResource", "UntagResource",
	"UpdateAlias", "UpdateCustomKeyStore", "UpdateKeyDescription", "UpdatePrimaryRegion", "Verify", "VerifyMac",
}

// IsAWSOperation reports whether name is an operation of AWS's KMS model.
func IsAWSOperation(name string) bool {
	_, found := slices.BinarySearch(AWSOperations, name)
	return found
}

// Operations returns the catalogue's rows; they must not be modified.
func Operations() []*Operation { return catalogue }

// LookupOperation returns the row of the operation name served under api.
func LookupOperation(api API, name string) (*Operation, bool) {
	for _, o := range catalogue {
		if o.API == api && o.Name == name {
			return o, true
		}
	}
	return nil, false
}

// grantOperationOfAction maps an IAM action to the grant operation that
// can allow it, from the catalogue's key members.
var grantOperationOfAction = func() map[string]string {
	m := map[string]string{}
	for _, o := range catalogue {
		for _, k := range o.Keys {
			if k.Grant != "" {
				m[k.Action] = k.Grant
			}
		}
	}
	return m
}()

// tracksLastUse reports whether a successful call of the KMS operation op
// updates its keys' last use, from the catalogue's rows.
var tracksLastUse = func() map[string]bool {
	m := map[string]bool{}
	for _, o := range catalogue {
		if o.API == APIKMS && o.TracksLastUse {
			m[o.Name] = true
		}
	}
	return m
}()

// grantOperationOf maps an action to the grant operation that may allow it.
func grantOperationOf(action string) string { return grantOperationOfAction[action] }

// checkState refuses a key whose state k does not accept, with AWS's
// exception for that state.
func (k *KeyMember) checkState(r *keyRecord) error {
	if slices.Contains(k.States, r.State) {
		return nil
	}
	switch {
	case r.State == StateDisabled && k.Disabled:
		return newError(ErrDisabled, "%s is disabled.", r.arn())
	case r.State == StatePendingReplicaDeletion && k.ReplicaDeletionDisabled:
		return newError(ErrDisabled, "%s is pending replica deletion.", r.arn())
	case slices.Equal(k.States, pendingDeletion):
		return newError(ErrInvalidState, "%s is not pending deletion.", r.arn())
	}
	return invalidState(r)
}

// checkUsage refuses a key whose usage k does not accept.
func (k *KeyMember) checkUsage(r *keyRecord) error {
	if k.Usages == nil || slices.Contains(k.Usages, r.Usage) {
		return nil
	}
	return newError(ErrInvalidKeyUsage, "%s key usage is %s which is not valid for %s.", r.arn(), r.Usage, k.Action[len("kms:"):])
}

// Method binds each served operation to the Service method that answers it.
// It is a switch, not a field of the rows, because the methods refer to
// their rows; TestCatalogue proves every row of the KMS and administration
// APIs has one.
func (o *Operation) Method() (Method, bool) {
	switch o.API {
	case APIKMS:
		switch o.Name {
		case "Encrypt":
			return bind((*Service).Encrypt), true
		case "Decrypt":
			return bind((*Service).Decrypt), true
		case "ReEncrypt":
			return bind((*Service).ReEncrypt), true
		case "GenerateDataKey":
			return bind((*Service).GenerateDataKey), true
		case "GenerateDataKeyWithoutPlaintext":
			return bind((*Service).GenerateDataKeyWithoutPlaintext), true
		case "GenerateRandom":
			return bind((*Service).GenerateRandom), true
		case "Sign":
			return bind((*Service).Sign), true
		case "Verify":
			return bind((*Service).Verify), true
		case "GetPublicKey":
			return bind((*Service).GetPublicKey), true
		case "GenerateMac":
			return bind((*Service).GenerateMac), true
		case "VerifyMac":
			return bind((*Service).VerifyMac), true
		case "DeriveSharedSecret":
			return bind((*Service).DeriveSharedSecret), true
		case "GenerateDataKeyPair":
			return bind((*Service).GenerateDataKeyPair), true
		case "GenerateDataKeyPairWithoutPlaintext":
			return bind((*Service).GenerateDataKeyPairWithoutPlaintext), true
		case "CreateKey":
			return bind((*Service).CreateKey), true
		case "DescribeKey":
			return bind((*Service).DescribeKey), true
		case "ListKeys":
			return bind((*Service).ListKeys), true
		case "EnableKey":
			return bind((*Service).EnableKey), true
		case "DisableKey":
			return bind((*Service).DisableKey), true
		case "UpdateKeyDescription":
			return bind((*Service).UpdateKeyDescription), true
		case "ScheduleKeyDeletion":
			return bind((*Service).ScheduleKeyDeletion), true
		case "CancelKeyDeletion":
			return bind((*Service).CancelKeyDeletion), true
		case "EnableKeyRotation":
			return bind((*Service).EnableKeyRotation), true
		case "DisableKeyRotation":
			return bind((*Service).DisableKeyRotation), true
		case "RotateKeyOnDemand":
			return bind((*Service).RotateKeyOnDemand), true
		case "GetKeyRotationStatus":
			return bind((*Service).GetKeyRotationStatus), true
		case "ListKeyRotations":
			return bind((*Service).ListKeyRotations), true
		case "GetParametersForImport":
			return bind((*Service).GetParametersForImport), true
		case "ImportKeyMaterial":
			return bind((*Service).ImportKeyMaterial), true
		case "DeleteImportedKeyMaterial":
			return bind((*Service).DeleteImportedKeyMaterial), true
		case "GetKeyLastUsage":
			return bind((*Service).GetKeyLastUsage), true
		case "ReplicateKey":
			return bind((*Service).ReplicateKey), true
		case "UpdatePrimaryRegion":
			return bind((*Service).UpdatePrimaryRegion), true
		case "GetKeyPolicy":
			return bind((*Service).GetKeyPolicy), true
		case "PutKeyPolicy":
			return bind((*Service).PutKeyPolicy), true
		case "ListKeyPolicies":
			return bind((*Service).ListKeyPolicies), true
		case "TagResource":
			return bind((*Service).TagResource), true
		case "UntagResource":
			return bind((*Service).UntagResource), true
		case "ListResourceTags":
			return bind((*Service).ListResourceTags), true
		case "CreateAlias":
			return bind((*Service).CreateAlias), true
		case "UpdateAlias":
			return bind((*Service).UpdateAlias), true
		case "DeleteAlias":
			return bind((*Service).DeleteAlias), true
		case "ListAliases":
			return bind((*Service).ListAliases), true
		case "CreateGrant":
			return bind((*Service).CreateGrant), true
		case "ListGrants":
			return bind((*Service).ListGrants), true
		case "ListRetirableGrants":
			return bind((*Service).ListRetirableGrants), true
		case "RetireGrant":
			return bind((*Service).RetireGrant), true
		case "RevokeGrant":
			return bind((*Service).RevokeGrant), true
		case "CreateCustomKeyStore":
			return bind((*Service).CreateCustomKeyStore), true
		case "DescribeCustomKeyStores":
			return bind((*Service).DescribeCustomKeyStores), true
		case "UpdateCustomKeyStore":
			return bind((*Service).UpdateCustomKeyStore), true
		case "ConnectCustomKeyStore":
			return bind((*Service).ConnectCustomKeyStore), true
		case "DisconnectCustomKeyStore":
			return bind((*Service).DisconnectCustomKeyStore), true
		case "DeleteCustomKeyStore":
			return bind((*Service).DeleteCustomKeyStore), true
		}
	case APIAdmin:
		switch o.Name {
		case "CreateUser":
			return bind((*Service).CreateUser), true
		case "ListUsers":
			return bind((*Service).ListUsers), true
		case "DeleteUser":
			return bind((*Service).DeleteUser), true
		case "CreateAccessKey":
			return bind((*Service).CreateAccessKey), true
		case "ListAccessKeys":
			return bind((*Service).ListAccessKeys), true
		case "DeleteAccessKey":
			return bind((*Service).DeleteAccessKey), true
		case "PutUserPolicy":
			return bind((*Service).PutUserPolicy), true
		case "GetUserPolicy":
			return bind((*Service).GetUserPolicy), true
		case "ListUserPolicies":
			return bind((*Service).ListUserPolicies), true
		case "DeleteUserPolicy":
			return bind((*Service).DeleteUserPolicy), true
		case "GetUsage":
			return bind((*Service).GetUsage), true
		case "GetStatus":
			return bind((*Service).GetStatus), true
		case "CreateRole":
			return bind((*Service).CreateRole), true
		case "GetRole":
			return bind((*Service).GetRole), true
		case "ListRoles":
			return bind((*Service).ListRoles), true
		case "DeleteRole":
			return bind((*Service).DeleteRole), true
		case "UpdateAssumeRolePolicy":
			return bind((*Service).UpdateAssumeRolePolicy), true
		case "PutRolePolicy":
			return bind((*Service).PutRolePolicy), true
		case "GetRolePolicy":
			return bind((*Service).GetRolePolicy), true
		case "ListRolePolicies":
			return bind((*Service).ListRolePolicies), true
		case "DeleteRolePolicy":
			return bind((*Service).DeleteRolePolicy), true
		}
	}
	return Method{}, false
}

// Method is a Service method with its input type, for a transport that
// decodes requests generically.
type Method struct {
	// NewInput returns a pointer to a zero input of the method.
	NewInput func() any
	// Call runs the method on s with in (a value NewInput returned).
	Call func(s *Service, ctx context.Context, c *Caller, in any) (any, error)
}

func bind[I, O any](f func(*Service, context.Context, *Caller, *I) (*O, error)) Method {
	return Method{
		NewInput: func() any { return new(I) },
		Call: func(s *Service, ctx context.Context, c *Caller, in any) (any, error) {
			typed, ok := in.(*I)
			if !ok {
				panic(fmt.Sprintf("kms: internal error: %T given to a method of %T", in, typed))
			}
			out, err := f(s, ctx, c, typed)
			if err != nil {
				return nil, err
			}
			return out, nil
		},
	}
}
