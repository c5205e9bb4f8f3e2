package kms

// Domain-separation labels of the secrets kms keeps under the root of trust
// and of the formats it seals. Each one is bound into the additional data
// (or the derivation) of exactly one kind of secret, so that a wrapped
// secret of one kind can never be unwrapped as another. These bytes are in
// every existing data dir: never change one; a new format gets a new label
// (and a line in DESIGN.md's label table, which design_test.go checks).
const (
	// labelKeyMaterial starts the AAD of a key version's material wrapped
	// under the root: "coffer/key-material/v1|<key ARN>|<version index>"
	// (materialAAD), binding the material to its key and version.
	labelKeyMaterial = "coffer/key-material/v1"

	// labelAccessKey starts the AAD of an access key's secret wrapped under
	// the root: "coffer/access-key/v1|<access key ID>" (secretAAD).
	labelAccessKey = "coffer/access-key/v1"

	// labelSTSTokenKey is the AAD of the STS session-token key wrapped
	// under the root (meta entry "sts-token-key").
	labelSTSTokenKey = "coffer/sts-token-key/v1"

	// labelSTSTokenKeyID is the 16-byte key ID field of every session
	// token's engine blob (tokenKeyID): it goes into the per-token HKDF
	// info and the blob's authenticated header.
	labelSTSTokenKeyID = "coffer/sts/token"

	// labelSTSTokenPurposeKey and labelSTSTokenPurpose are the one pair of
	// the encryption context every session token is sealed under
	// (tokenContext), authenticated as the blob's additional data.
	labelSTSTokenPurposeKey = "coffer:purpose"
	labelSTSTokenPurpose    = "sts-session-token"

	// labelAuditSigningKey is the AAD of the audit signing key (its SEC 1
	// DER) wrapped under the root in <data dir>/audit-signing.key.
	labelAuditSigningKey = "coffer/audit-signing-key/v1"

	// labelCustomKeyStoreKey starts the PKCS#11 object label (CKA_LABEL) of
	// a custom-key-store key: "coffer-cks/<key ID>", the handle stored in
	// its key version (HSMKey).
	labelCustomKeyStoreKey = "coffer-cks/"

	// labelRecord starts the input of every stored record's MAC (record.go),
	// which binds the record to its schema version, bucket and store key.
	labelRecord = "coffer/record/v1"

	// labelImportWrappingKey starts the AAD of an import token's wrapping
	// private key (PKCS#8) wrapped under the root:
	// "coffer/import-wrapping-key/v1|<key ARN>|<token digest>" (import.go).
	labelImportWrappingKey = "coffer/import-wrapping-key/v1"

	// labelImportToken is the SHA-256 input prefix that turns an import
	// token into the name of its record (import.go tokenName).
	labelImportToken = "coffer/import-token/v1"

	// labelImportedMaterialID is the HMAC-SHA-256 message, keyed by the
	// imported material, before "|<key ID>": its KeyMaterialId (import.go).
	labelImportedMaterialID = "coffer/imported-material-id/v1"

	// labelRecordKey is the AAD of the record key wrapped under the root
	// (meta entry "record-mac-key").
	labelRecordKey = "coffer/record-mac-key/v1"
)
