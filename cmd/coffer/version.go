package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coffer-kms/coffer/asm"
	"github.com/coffer-kms/coffer/engine"
)

var debugBuildInfo = debug.ReadBuildInfo

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the CPU features and the AES-GCM kernel in use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			version := binaryVersion()
			fmt.Fprintf(w, "coffer %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			fmt.Fprintf(w, "aes-gcm kernel: %s\n", asm.Kernel())
			fmt.Fprintf(w, "cpu features: %s\n", strings.Join(asm.Features(), " "))
			results, err := engine.SelfTest()
			for _, r := range results {
				status, chosen := "ok", ""
				if r.Err != nil {
					status = "FAILED: " + r.Err.Error()
				}
				if r.Chosen {
					chosen = " (in use)"
				}
				fmt.Fprintf(w, "self-test: %s %s%s\n", r.Name, status, chosen)
			}
			return err
		},
	}
}
