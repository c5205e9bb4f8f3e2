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
	"github.com/coffer-kms/coffer/internal/atomicfile"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/kms"
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
	switch kind := strings.TrimSpace(string(prev)); {
	case errors.Is(err, fs.ErrNotExist):
		// Durable before anything is wrapped under the root, and never
		// replacing a marker another start wrote meanwhile.
		if err := atomicfile.Create(marker, []byte(r.kind+"\n"), 0o600); err != nil {
			return nil, nil, fmt.Errorf("record the root of trust of %s: %w", dataDir, err)
		}
	case err != nil:
		return nil, nil, fmt.Errorf("read %s, which says which root of trust made the data dir: %w", marker, err)
	case kind != "software" && kind != "pkcs11":
		return nil, nil, fmt.Errorf("%s is unreadable: it holds %q, not software or pkcs11; it says which root of trust "+
			"the data dir's keys are wrapped under: restore it from a backup (or write the kind the data dir was made with)", marker, truncateForMessage(kind))
	case kind != r.kind:
		return nil, nil, fmt.Errorf("%s was created with the %s root of trust, not %s: its keys are wrapped under that root",
			dataDir, kind, r.kind)
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
	cmd.AddCommand(initCmd, newMigrateCmd())
	return cmd
}

// newMigrateCmd moves a stopped server's data dir from the software root to
// a PKCS#11 root: every wrapped secret is re-wrapped under the token's key,
// then the data dir is marked as belonging to that root.
func newMigrateCmd() *cobra.Command {
	var (
		r       rootOptions
		dataDir string
	)
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Re-wrap a data dir's keys from the software root to a PKCS#11 root (server stopped)",
		Long: `Re-wraps every key version, access-key secret, the session-token key (STS)
and the audit signing key of a data dir from its software root (root.key) to the root key of a PKCS#11 token,
created beforehand with ` + "`coffer admin hsm init`" + `. Stop the server first.
The store changes in one transaction; a run cut short can simply be run again.
root.key is left in place: it still opens backups made before the migration,
so destroy it once they are no longer needed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return migrateRoot(cmd.Context(), cmd.OutOrStdout(), dataDir, r)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./coffer-data", "the data dir to migrate")
	r.flags(cmd, false)
	return cmd
}

func migrateRoot(ctx context.Context, out io.Writer, dataDir string, r rootOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	marker := filepath.Join(dataDir, "root-backend")
	prev, err := os.ReadFile(marker)
	if err != nil {
		return fmt.Errorf("%s is not a Coffer data dir: %w", dataDir, err)
	}
	switch strings.TrimSpace(string(prev)) {
	case "pkcs11":
		fmt.Fprintf(out, "%s already uses the pkcs11 root; nothing to do\n", dataDir)
		return nil
	case "software":
	default:
		return fmt.Errorf("%s: unknown root of trust %q", marker, strings.TrimSpace(string(prev)))
	}
	from, err := hsm.OpenSoftware(hsm.SoftwareConfig{Path: filepath.Join(dataDir, "root.key"), Passphrase: passphraseFromEnv()})
	if err != nil {
		return fmt.Errorf("software root: %w", err)
	}
	defer from.Close()
	cfg, err := r.pkcs11Config(hsm.RootKeyRequired)
	if err != nil {
		return err
	}
	to, err := hsm.OpenPKCS11(cfg)
	if err != nil {
		return fmt.Errorf("open PKCS#11 token %q (create its root key with `coffer admin hsm init`): %w", r.token, err)
	}
	defer to.Close()
	store, err := keystore.OpenBolt(filepath.Join(dataDir, "coffer.db"))
	if err != nil {
		return fmt.Errorf("%w (is the server still running?)", err)
	}
	defer store.Close()
	st, err := kms.RewrapAll(ctx, store, filepath.Join(dataDir, kms.AuditKeyFile), from, to)
	if err != nil {
		return fmt.Errorf("re-wrap: %w; the data dir is not marked as migrated: fix the cause and run the migration again", err)
	}
	if err := writeFileAtomic(marker, []byte("pkcs11\n")); err != nil {
		return err
	}
	fmt.Fprintf(out, "re-wrapped %d key versions and %d access keys under token %q (%d found already moved)", st.KeyVersions, st.AccessKeys, cfg.TokenLabel, st.AlreadyMoved)
	if st.ImportTokens > 0 {
		fmt.Fprintf(out, ", %d import tokens' wrapping keys", st.ImportTokens)
	}
	if st.TokenKey {
		fmt.Fprint(out, ", the session-token key")
	}
	if st.RecordKey {
		fmt.Fprint(out, ", the record key")
	}
	if st.AuditKey {
		fmt.Fprint(out, ", and the audit signing key")
	}
	fmt.Fprintf(out, "\n%s now uses the pkcs11 root: start it with `coffer serve --hsm pkcs11 ...`.\n", dataDir)
	fmt.Fprintf(out, "%s still opens backups made before now; destroy it once they are no longer needed.\n", filepath.Join(dataDir, "root.key"))
	return nil
}

// writeFileAtomic replaces path with data (mode 0600) durably.
func writeFileAtomic(path string, data []byte) error {
	return atomicfile.WriteFile(path, data, 0o600)
}

// truncateForMessage keeps an unexpected file's content short in a message.
func truncateForMessage(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
