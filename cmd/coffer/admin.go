package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"
)

// adminClient calls the administration API of a running server, signing
// with the AWS credentials chain like any AWS tool.
type adminClient struct {
	endpoint string
	region   string
}

func (a *adminClient) call(ctx context.Context, op string, in, out any) error {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	region := a.region
	if region == "" {
		region = cfg.Region
	}
	if region == "" {
		region = "us-east-1"
	}
	endpoint := a.endpoint
	for _, env := range []string{"AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL"} {
		if endpoint == "" {
			endpoint = os.Getenv(env)
		}
	}
	if endpoint == "" {
		endpoint = "http://" + DefaultListen
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("no AWS credentials: %w", err)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "CofferAdmin."+op)
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "kms", region, time.Now()); err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		json.Unmarshal(raw, &e)
		return fmt.Errorf("%s: %s", e.Type, e.Message)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

func newAdminCmd() *cobra.Command {
	a := &adminClient{}
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage users, roles, access keys and identity policies of a running server",
		Long: `Manage the principals of your account on a running Coffer server. The commands
sign their requests with your AWS credentials (environment, shared credentials
file, profile) and go to --endpoint-url, AWS_ENDPOINT_URL_KMS or the default
listen address. Only principals whose policies allow the action may use them.`,
	}
	cmd.PersistentFlags().StringVar(&a.endpoint, "endpoint-url", "", "server URL (default $AWS_ENDPOINT_URL_KMS)")
	cmd.PersistentFlags().StringVar(&a.region, "region", "", "region (default from the AWS configuration)")
	show := func(cmd *cobra.Command, v any) error {
		if v == nil {
			return nil
		}
		out, _ := json.MarshalIndent(v, "", "  ")
		_, err := fmt.Fprintln(cmd.OutOrStdout(), string(out))
		return err
	}
	run := func(op string, args cobra.PositionalArgs, build func([]string) map[string]string) func(string, string) *cobra.Command {
		return func(use, short string) *cobra.Command {
			return &cobra.Command{
				Use: use, Short: short, Args: args,
				RunE: func(cmd *cobra.Command, argv []string) error {
					var out any
					if err := a.call(cmd.Context(), op, build(argv), &out); err != nil {
						return err
					}
					return show(cmd, out)
				},
			}
		}
	}
	userArg := func(a []string) map[string]string {
		if len(a) == 0 {
			return map[string]string{}
		}
		return map[string]string{"UserName": a[0]}
	}
	user := &cobra.Command{Use: "user", Short: "Users of your account"}
	user.AddCommand(
		run("CreateUser", cobra.ExactArgs(1), userArg)("create NAME", "Create a user"),
		run("ListUsers", cobra.NoArgs, userArg)("list", "List users"),
		run("DeleteUser", cobra.ExactArgs(1), userArg)("delete NAME", "Delete a user with its access keys and policies"),
	)
	key := &cobra.Command{Use: "access-key", Short: "Access keys of users"}
	key.AddCommand(
		run("CreateAccessKey", cobra.ExactArgs(1), userArg)("create USER", "Create an access key; its secret is shown only now"),
		run("ListAccessKeys", cobra.MaximumNArgs(1), userArg)("list [USER]", "List access keys"),
		run("DeleteAccessKey", cobra.ExactArgs(1), func(a []string) map[string]string { return map[string]string{"AccessKeyId": a[0]} })("delete ACCESS_KEY_ID", "Delete an access key"),
	)
	var docFile string
	put := &cobra.Command{
		Use: "put USER POLICY_NAME --document FILE|-", Short: "Set an identity policy of a user", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, argv []string) error {
			doc, err := readDocument(cmd, docFile)
			if err != nil {
				return err
			}
			return a.call(cmd.Context(), "PutUserPolicy", map[string]string{"UserName": argv[0], "PolicyName": argv[1], "PolicyDocument": doc}, nil)
		},
	}
	put.Flags().StringVar(&docFile, "document", "", "policy document file, or - for standard input")
	put.MarkFlagRequired("document")
	names := func(a []string) map[string]string { return map[string]string{"UserName": a[0], "PolicyName": a[1]} }
	policy := &cobra.Command{Use: "user-policy", Short: "Identity policies of users"}
	policy.AddCommand(put,
		run("GetUserPolicy", cobra.ExactArgs(2), names)("get USER POLICY_NAME", "Show an identity policy"),
		run("ListUserPolicies", cobra.ExactArgs(1), userArg)("list USER", "List a user's identity policies"),
		run("DeleteUserPolicy", cobra.ExactArgs(2), names)("delete USER POLICY_NAME", "Delete an identity policy"),
	)
	usage := run("GetUsage", cobra.NoArgs, userArg)("usage", "Show the account's call counts per key and operation")
	cmd.AddCommand(user, key, policy, usage, newHSMCmd(), newStoreCmd())
	cmd.AddCommand(roleCommands(a, show)...)
	return cmd
}
