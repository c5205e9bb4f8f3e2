package main

import (
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// bindEnv makes every flag of cmd default to COFFER_<FLAG_NAME> when that
// environment variable is set, so containers and services can be configured
// without arguments. An explicit flag still wins.
func bindEnv(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		name := "COFFER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && !f.Changed && err == nil {
			err = cmd.Flags().Set(f.Name, v)
		}
	})
	return err
}
