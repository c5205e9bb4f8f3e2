package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coffer-kms/coffer/hsm"
)

// rootOptions choose the root of trust.
type rootOptions struct {
	kind       string // "software" or "pkcs11"
	module     string
	token      string
	pinFile    string
	keyLabel   string
	hsmWorkers int
}

func (r *rootOptions) flags(cmd *cobra.Command, withKind bool) {
	f := cmd.Flags()
	if withKind {
		f.StringVar(&r.kind, "hsm", "software", "root of trust: software (sealed root.key) or pkcs11")
		f.IntVar(&r.hsmWorkers, "hsm-workers", 4, "HSM sessions in the unwrap pool (pkcs11)")
	}
	f.StringVar(&r.module, "pkcs11-module", "/usr/lib/softhsm/libsofthsm2.so", "PKCS#11 library")
	f.StringVar(&r.token, "pkcs11-token", "", "token label")
	f.StringVar(&r.pinFile, "pkcs11-pin-file", "", "file holding the user PIN (default: COFFER_PKCS11_PIN in the environment)")
	f.StringVar(&r.keyLabel, "pkcs11-key-label", hsm.DefaultKeyLabel, "label of the root key object")
}

func (r *rootOptions) pkcs11Config(mode hsm.RootKeyMode) (hsm.PKCS11Config, error) {
	pin := os.Getenv("COFFER_PKCS11_PIN")
	if r.pinFile != "" {
		raw, err := os.ReadFile(r.pinFile)
		if err != nil {
			return hsm.PKCS11Config{}, fmt.Errorf("--pkcs11-pin-file: %w", err)
		}
		pin = strings.TrimRight(string(raw), "\r\n")
	}
	if pin == "" || r.token == "" {
		return hsm.PKCS11Config{}, errors.New("pkcs11 needs --pkcs11-token and a PIN (--pkcs11-pin-file or COFFER_PKCS11_PIN)")
	}
	return hsm.PKCS11Config{ModulePath: r.module, TokenLabel: r.token, PIN: pin, KeyLabel: r.keyLabel, RootKey: mode}, nil
}

// openRoot opens the data dir's root of trust. A data dir remembers which
// kind made it: its keys are wrapped under that root and no other.
func openRoot(dataDir string, r rootOptions) (hsm.Backend, func(io.Writer), error) {
	marker := filepath.Join(dataDir, "root-backend")
	prev, err := os.ReadFile(marker)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.WriteFile(marker, []byte(r.kind+"\n"), 0o600); err != nil {
			return nil, nil, err
		}
	case err != nil:
		return nil, nil, err
	case strings.TrimSpace(string(prev)) != r.kind:
		return nil, nil, fmt.Errorf("%s was created with the %s root of trust, not %s: its keys are wrapped under that root",
			dataDir, strings.TrimSpace(string(prev)), r.kind)
	}
	switch r.kind {
	case "software":
		b, err := hsm.OpenSoftware(hsm.SoftwareConfig{Path: filepath.Join(dataDir, "root.key"), Passphrase: passphraseFromEnv()})
		return b, nil, err
	case "pkcs11":
		cfg, err := r.pkcs11Config(hsm.RootKeyRequired)
		if err != nil {
			return nil, nil, err
		}
		b, err := hsm.OpenPKCS11(cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("open PKCS#11 token %q (create its root key with `coffer admin hsm init`): %w", r.token, err)
		}
		pool, err := hsm.NewPool(b, hsm.PoolConfig{Workers: r.hsmWorkers})
		if err != nil {
			b.Close()
			return nil, nil, err
		}
		return pool, pool.WriteMetrics, nil
	}
	return nil, nil, fmt.Errorf("--hsm %q: want software or pkcs11", r.kind)
}

func newHSMCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "hsm", Short: "Manage the HSM root of trust"}
	var r rootOptions
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Create the non-extractable root key in a PKCS#11 token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := r.pkcs11Config(hsm.RootKeyDeferred)
			if err != nil {
				return err
			}
			b, err := hsm.OpenPKCS11(cfg)
			if err != nil {
				return err
			}
			defer b.Close()
			if err := b.InitRootKey(context.Background()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created root key %q in token %q\n", cfg.KeyLabel, cfg.TokenLabel)
			return nil
		},
	}
	r.flags(initCmd, false)
	cmd.AddCommand(initCmd)
	return cmd
}
