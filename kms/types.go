package kms

import (
	"strconv"
	"time"
)

// Timestamp is an instant encoded as AWS JSON encodes timestamps: epoch
// seconds, with milliseconds as a fraction.
type Timestamp struct{ time.Time }

// MarshalJSON implements json.Marshaler.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(t.UnixMilli())/1000, 'f', 3, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	t.Time = time.UnixMilli(int64(f * 1000)).UTC()
	return nil
}

func ts(t time.Time) *Timestamp {
	if t.IsZero() {
		return nil
	}
	return &Timestamp{t}
}

// Tag is a key tag.
type Tag struct {
	TagKey   string `json:"TagKey"`
	TagValue string `json:"TagValue"`
}

// KeyMetadata is AWS's KeyMetadata shape.
type KeyMetadata struct {
	AWSAccountId                string                    `json:"AWSAccountId"`
	KeyId                       string                    `json:"KeyId"`
	Arn                         string                    `json:"Arn"`
	CreationDate                *Timestamp                `json:"CreationDate,omitempty"`
	Enabled                     bool                      `json:"Enabled"`
	Description                 string                    `json:"Description"`
	KeyUsage                    string                    `json:"KeyUsage"`
	KeyState                    string                    `json:"KeyState"`
	DeletionDate                *Timestamp                `json:"DeletionDate,omitempty"`
	Origin                      string                    `json:"Origin"`
	CustomKeyStoreId            string                    `json:"CustomKeyStoreId,omitempty"`
	CloudHsmClusterId           string                    `json:"CloudHsmClusterId,omitempty"`
	KeyManager                  string                    `json:"KeyManager"`
	CustomerMasterKeySpec       string                    `json:"CustomerMasterKeySpec"`
	KeySpec                     string                    `json:"KeySpec"`
	EncryptionAlgorithms        []string                  `json:"EncryptionAlgorithms,omitempty"`
	SigningAlgorithms           []string                  `json:"SigningAlgorithms,omitempty"`
	KeyAgreementAlgorithms      []string                  `json:"KeyAgreementAlgorithms,omitempty"`
	MacAlgorithms               []string                  `json:"MacAlgorithms,omitempty"`
	MultiRegion                 bool                      `json:"MultiRegion"`
	MultiRegionConfiguration    *MultiRegionConfiguration `json:"MultiRegionConfiguration,omitempty"`
	PendingDeletionWindowInDays int                       `json:"PendingDeletionWindowInDays,omitempty"`
	CurrentKeyMaterialId        string                    `json:"CurrentKeyMaterialId,omitempty"`
	// Keys with imported material (Origin EXTERNAL).
	ExpirationModel string     `json:"ExpirationModel,omitempty"`
	ValidTo         *Timestamp `json:"ValidTo,omitempty"`
}

// Key states, usages, specs and algorithms, as the AWS API spells them.
const (
	StateEnabled         = "Enabled"
	StateDisabled        = "Disabled"
	StatePendingDeletion = "PendingDeletion"
	StatePendingImport   = "PendingImport"
	StateUnavailable     = "Unavailable"
	// StatePendingReplicaDeletion is a multi-Region primary key scheduled
	// for deletion while it still has replicas: its waiting period starts
	// when the last replica is deleted (mrk.go).
	StatePendingReplicaDeletion = "PendingReplicaDeletion"

	UsageEncryptDecrypt = "ENCRYPT_DECRYPT"
	SpecSymmetric       = "SYMMETRIC_DEFAULT"
	AlgSymmetric        = "SYMMETRIC_DEFAULT"
	OriginAWSKMS        = "AWS_KMS"
	OriginExternal      = "EXTERNAL"
	ManagerCustomer     = "CUSTOMER"
	ManagerAWS          = "AWS"
)

var (
	keySpecs = []string{"RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
		"ECC_SECG_P256K1", "SYMMETRIC_DEFAULT", "HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512", "SM2",
		"ML_DSA_44", "ML_DSA_65", "ML_DSA_87", "ECC_NIST_EDWARDS25519"}
	keyUsages            = []string{"SIGN_VERIFY", "ENCRYPT_DECRYPT", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"}
	origins              = []string{"AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"}
	encryptionAlgorithms = []string{"SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE"}
	dataKeySpecs         = []string{"AES_256", "AES_128"}
	includeKeyMaterial   = []string{"ALL_KEY_MATERIAL", "ROTATIONS_ONLY"}
)
