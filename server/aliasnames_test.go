package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

// TestAliasNames holds CreateAlias, UpdateAlias and DeleteAlias to AWS's
// rules for AliasName, one character class at a time. Sources: CreateAlias
// in the AWS KMS API reference ("It can contain only alphanumeric
// characters, forward slashes (/), underscores (_), and dashes (-)",
// "cannot begin with alias/aws/"; TargetKeyId "cannot be an alias"),
// botocore's pattern ^[a-zA-Z0-9:/_-]+$ and length 1..256, and moto's
// kms responses (built from AWS's answers) for the exception and message
// of ':', the reserved prefix and an alias as target.
func TestAliasNames(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	id := e.createKey("alias names")
	must[*awskms.CreateAliasOutput](t)(c.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/existing"), TargetKeyId: &id}))

	const regexMsg = "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
	cases := []struct {
		name string
		code string // "" for success
		msg  string // a part of the message
	}{
		{"alias/lower", "", ""},
		{"alias/UPPER", "", ""},
		{"alias/0123456789", "", ""},
		{"alias/a/b/c", "", ""},
		{"alias/under_score", "", ""},
		{"alias/da-sh", "", ""},
		{"alias/" + strings.Repeat("x", 250), "", ""}, // 256 characters
		{"alias/co:lon", "ValidationException", "alias/co:lon contains invalid characters for an alias"},
		{"alias/sp ace", "ValidationException", regexMsg},
		{"alias/do.t", "ValidationException", regexMsg},
		{"alias/at@", "ValidationException", regexMsg},
		{"alias/star*", "ValidationException", regexMsg},
		{"alias/ü", "ValidationException", regexMsg},
		{"alias/tab\t", "ValidationException", regexMsg},
		{"alias/" + strings.Repeat("x", 251), "ValidationException", "Member must have length less than or equal to 256"},
		{"", "ValidationException", "Member must not be null"},
		{"noprefix", "ValidationException", `Alias must start with the prefix "alias/"`},
		{"ALIAS/upper-prefix", "ValidationException", `Alias must start with the prefix "alias/"`},
		{"alias/", "InvalidAliasNameException", "must have a name after"},
		{"alias/aws/s3", "NotAuthorizedException", "reserved for AWS managed keys"},
		{"alias/aws/", "NotAuthorizedException", "reserved for AWS managed keys"},
		{"alias/aws/co:lon", "NotAuthorizedException", "reserved for AWS managed keys"},
		{"alias/awsnot-reserved", "", ""},
		{"alias/AWS/not-reserved", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String(tc.name), TargetKeyId: &id})
			checkAliasAnswer(t, "CreateAlias", err, tc.code, tc.msg)
			if tc.code == "" {
				// UpdateAlias and DeleteAlias accept what CreateAlias made.
				_, err = c.UpdateAlias(ctx, &awskms.UpdateAliasInput{AliasName: aws.String(tc.name), TargetKeyId: &id})
				checkAliasAnswer(t, "UpdateAlias", err, "", "")
				_, err = c.DeleteAlias(ctx, &awskms.DeleteAliasInput{AliasName: aws.String(tc.name)})
				checkAliasAnswer(t, "DeleteAlias", err, "", "")
				return
			}
			// A name CreateAlias refuses, UpdateAlias and DeleteAlias
			// refuse the same way.
			_, err = c.UpdateAlias(ctx, &awskms.UpdateAliasInput{AliasName: aws.String(tc.name), TargetKeyId: &id})
			checkAliasAnswer(t, "UpdateAlias", err, tc.code, tc.msg)
			_, err = c.DeleteAlias(ctx, &awskms.DeleteAliasInput{AliasName: aws.String(tc.name)})
			checkAliasAnswer(t, "DeleteAlias", err, tc.code, tc.msg)
		})
	}

	// An alias, by name or ARN, existing or not, is never a target.
	for _, target := range []string{"alias/existing", "alias/missing", "arn:aws:kms:us-east-1:111122223333:alias/existing"} {
		_, err := c.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/new"), TargetKeyId: aws.String(target)})
		checkAliasAnswer(t, "CreateAlias to "+target, err, "ValidationException", "Aliases must refer to keys. Not aliases")
		_, err = c.UpdateAlias(ctx, &awskms.UpdateAliasInput{AliasName: aws.String("alias/existing"), TargetKeyId: aws.String(target)})
		checkAliasAnswer(t, "UpdateAlias to "+target, err, "ValidationException", "Aliases must refer to keys. Not aliases")
	}
	out := must[*awskms.ListAliasesOutput](t)(c.ListAliases(ctx, &awskms.ListAliasesInput{}))
	if len(out.Aliases) != 1 || *out.Aliases[0].AliasName != "alias/existing" {
		t.Fatalf("aliases left: %+v", out.Aliases)
	}
}

func checkAliasAnswer(t *testing.T, what string, err error, code, msg string) {
	t.Helper()
	if got := apiCode(err); got != code {
		t.Fatalf("%s: %v, want %q", what, err, code)
	}
	if !strings.Contains(apiMessage(err), msg) {
		t.Fatalf("%s: message %q, want it to contain %q", what, apiMessage(err), msg)
	}
}
