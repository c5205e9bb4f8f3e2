// Command coffer is Coffer's one binary: the KMS server, its
// administration, stream encryption and audit tools.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "coffer:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "coffer",
		Short:         "Coffer, an AWS-KMS-compatible key management service",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newAdminCmd(), newAuditCmd(), newVersionCmd(), newBenchCmd(), newConfigCmd(), newStatusCmd())
	root.AddCommand(newEncryptCmd())
	root.AddCommand(newDecryptCmd())
	return root
}
