package kms

// Quota is an operation's request quota as AWS KMS applies it, per account
// and Region: either a share of a quota several operations draw on
// (Shared names it) or a rate of the operation's own. The zero Quota is no
// quota (Coffer's administration API and STS, which AWS KMS does not have).
//
// Source: the AWS KMS Developer Guide, "Request quotas"
// (docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html),
// its table "Request quotas for each AWS KMS API operation".
type Quota struct {
	Shared    string // QuotaCryptographic, or "" for a quota of the operation's own
	PerSecond int    // the operation's own default rate (requests per second)
}

// QuotaCryptographic is the quota AWS's symmetric cryptographic operations
// share: Decrypt, Encrypt, GenerateDataKey(WithoutPlaintext), GenerateMac,
// GenerateRandom, ReEncrypt and VerifyMac.
const QuotaCryptographic = "cryptographic"

// CryptographicQuota returns AWS's default rate of the shared symmetric
// cryptographic quota in region: 50,000 per second in us-east-1, us-east-2,
// us-west-2 and eu-west-1; 20,000 in ap-northeast-1, ap-southeast-1,
// ap-southeast-2, eu-central-1 and eu-west-2; 10,000 in ap-east-1,
// ap-northeast-2, ap-northeast-3, ap-south-1, ca-central-1, eu-north-1,
// eu-south-1, eu-west-3, me-south-1, sa-east-1 and us-west-1; 5,500
// elsewhere (the developer guide's "Request quotas" table).
func CryptographicQuota(region string) int {
	switch region {
	case "us-east-1", "us-east-2", "us-west-2", "eu-west-1":
		return 50000
	case "ap-northeast-1", "ap-southeast-1", "ap-southeast-2", "eu-central-1", "eu-west-2":
		return 20000
	case "ap-east-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1", "ca-central-1", "eu-north-1",
		"eu-south-1", "eu-west-3", "me-south-1", "sa-east-1", "us-west-1":
		return 10000
	}
	return 5500
}

var cryptographic = Quota{Shared: QuotaCryptographic}

func perSecond(n int) Quota { return Quota{PerSecond: n} }
