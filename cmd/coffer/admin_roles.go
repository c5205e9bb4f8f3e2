package main

import (
	"io"
	"os"

	"github.com/spf13/cobra"
)

// readDocument reads a policy document from a file, or standard input for "-".
func readDocument(cmd *cobra.Command, file string) (string, error) {
	var doc []byte
	var err error
	if file == "-" {
		doc, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
	} else {
		doc, err = os.ReadFile(file)
	}
	return string(doc), err
}

// roleCommands are `coffer admin role …` and `coffer admin role-policy …`.
// Sessions of a role come from STS AssumeRole on the same endpoint (for
// example `aws sts assume-role --endpoint-url …`).
func roleCommands(a *adminClient, show func(*cobra.Command, any) error) []*cobra.Command {
	call := func(cmd *cobra.Command, op string, in map[string]any) error {
		var out any
		if err := a.call(cmd.Context(), op, in, &out); err != nil {
			return err
		}
		return show(cmd, out)
	}
	named := func(op, use, short string) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, argv []string) error {
			return call(cmd, op, map[string]any{"RoleName": argv[0]})
		}}
	}

	var trustFile, description string
	var maxSession int
	create := &cobra.Command{
		Use: "create NAME --trust FILE|-", Short: "Create a role; its trust policy says who may assume it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			doc, err := readDocument(cmd, trustFile)
			if err != nil {
				return err
			}
			in := map[string]any{"RoleName": argv[0], "AssumeRolePolicyDocument": doc, "Description": description}
			if maxSession > 0 {
				in["MaxSessionDuration"] = maxSession
			}
			return call(cmd, "CreateRole", in)
		},
	}
	create.Flags().StringVar(&trustFile, "trust", "", "trust policy document file, or - for standard input")
	create.Flags().StringVar(&description, "description", "", "what the role is for")
	create.Flags().IntVar(&maxSession, "max-session-duration", 0, "longest session in seconds, 3600..43200 (default 3600)")
	create.MarkFlagRequired("trust")
	var updateFile string
	update := &cobra.Command{
		Use: "update-trust NAME --trust FILE|-", Short: "Replace a role's trust policy", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			doc, err := readDocument(cmd, updateFile)
			if err != nil {
				return err
			}
			return call(cmd, "UpdateAssumeRolePolicy", map[string]any{"RoleName": argv[0], "PolicyDocument": doc})
		},
	}
	update.Flags().StringVar(&updateFile, "trust", "", "trust policy document file, or - for standard input")
	update.MarkFlagRequired("trust")
	role := &cobra.Command{Use: "role", Short: "Roles of your account, assumed through STS AssumeRole"}
	role.AddCommand(create, update,
		named("GetRole", "get NAME", "Show a role"),
		&cobra.Command{Use: "list", Short: "List roles", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd, "ListRoles", map[string]any{})
		}},
		named("DeleteRole", "delete NAME", "Delete a role and its policies; its sessions stop working"),
	)

	var docFile string
	put := &cobra.Command{
		Use: "put ROLE POLICY_NAME --document FILE|-", Short: "Set an identity policy of a role", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, argv []string) error {
			doc, err := readDocument(cmd, docFile)
			if err != nil {
				return err
			}
			return call(cmd, "PutRolePolicy", map[string]any{"RoleName": argv[0], "PolicyName": argv[1], "PolicyDocument": doc})
		},
	}
	put.Flags().StringVar(&docFile, "document", "", "policy document file, or - for standard input")
	put.MarkFlagRequired("document")
	two := func(op, use, short string) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(2), RunE: func(cmd *cobra.Command, argv []string) error {
			return call(cmd, op, map[string]any{"RoleName": argv[0], "PolicyName": argv[1]})
		}}
	}
	policy := &cobra.Command{Use: "role-policy", Short: "Identity policies of roles"}
	policy.AddCommand(put,
		two("GetRolePolicy", "get ROLE POLICY_NAME", "Show an identity policy of a role"),
		named("ListRolePolicies", "list ROLE", "List a role's identity policies"),
		two("DeleteRolePolicy", "delete ROLE POLICY_NAME", "Delete an identity policy of a role"),
	)
	return []*cobra.Command{role, policy}
}
