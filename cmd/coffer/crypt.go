package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/coffer-kms/coffer/engine/stream"
	"github.com/coffer-kms/coffer/engine/stream/awskms"
	"github.com/coffer-kms/coffer/internal/atomicfile"
)

// cryptOptions are the flags encrypt and decrypt share.
type cryptOptions struct {
	keyID   string
	context []string
	workers int
}

func (o *cryptOptions) config() (stream.Config, error) {
	cfg := stream.Config{KeyID: o.keyID, Workers: o.workers}
	for _, kv := range o.context {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return cfg, fmt.Errorf("--context %q: want key=value", kv)
		}
		if cfg.Context == nil {
			cfg.Context = map[string]string{}
		}
		cfg.Context[k] = v
	}
	return cfg, nil
}

func newEncryptCmd() *cobra.Command {
	var o cryptOptions
	cmd := &cobra.Command{
		Use:   "encrypt --key-id <id|alias> [--context k=v …] [IN [OUT]]",
		Short: "Encrypt a file or stdin under a new data key from KMS (AWS_ENDPOINT_URL_KMS selects Coffer)",
		Long: `Encrypt IN (default: stdin, also "-") to OUT (default: stdout, also "-") under a
fresh data key that the KMS key --key-id generates, bound to the encryption
context. The output is a Coffer stream: an authenticated header and a DARE 2.0
body (minio/sio's format). Credentials, region and endpoint come from the AWS
environment (AWS_ENDPOINT_URL_KMS, AWS_PROFILE, AWS_ACCESS_KEY_ID …).`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.keyID == "" {
				return errors.New("encrypt: --key-id is required")
			}
			cfg, err := o.config()
			if err != nil {
				return err
			}
			return runCrypt(cmd, args, "encrypt", func(ctx context.Context, p stream.KeyProvider, dst io.Writer, src io.Reader) error {
				w, err := stream.NewWriter(ctx, dst, p, cfg)
				if err != nil {
					return err
				}
				if _, err := io.Copy(w, src); err != nil {
					w.Close()
					return err
				}
				return w.Close()
			})
		},
	}
	cmd.Flags().StringVar(&o.keyID, "key-id", "", "KMS key: key ID, key ARN, alias name or alias ARN")
	cmd.Flags().StringArrayVar(&o.context, "context", nil, "encryption context pair k=v (repeatable)")
	cmd.Flags().IntVar(&o.workers, "workers", runtime.GOMAXPROCS(0), "packages sealed at once, on as many cores: the default is GOMAXPROCS (one per CPU); 1 is sequential")
	return cmd
}

func newDecryptCmd() *cobra.Command {
	var o cryptOptions
	cmd := &cobra.Command{
		Use:   "decrypt [--context k=v …] [IN [OUT]]",
		Short: "Decrypt a Coffer stream from a file or stdin",
		Long: `Decrypt the Coffer stream IN (default: stdin, also "-") to OUT (default: stdout,
also "-"). The KMS unwraps the data key named in the stream's header; --key-id,
if given, must be the key it is under, and every --context pair must be in the
stream's encryption context. Written to a file, the plaintext appears under its
name only once the whole stream has been authenticated; written to stdout, the
plaintext of authenticated packages flows as it is read, and a damaged stream
ends with an error and a non-zero exit.`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := o.config()
			if err != nil {
				return err
			}
			return runCrypt(cmd, args, "decrypt", func(ctx context.Context, p stream.KeyProvider, dst io.Writer, src io.Reader) error {
				r, err := stream.NewReader(ctx, src, p, cfg)
				if err != nil {
					return err
				}
				defer r.Close()
				_, err = io.Copy(dst, r)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&o.keyID, "key-id", "", "KMS key the data key must be under (default: the one the header names)")
	cmd.Flags().StringArrayVar(&o.context, "context", nil, "encryption context pair k=v the stream must carry (repeatable)")
	cmd.Flags().IntVar(&o.workers, "workers", runtime.GOMAXPROCS(0), "packages opened at once, on as many cores: the default is GOMAXPROCS (one per CPU); 1 is sequential")
	return cmd
}

// runCrypt opens IN and OUT, connects to the KMS and runs fn. A file OUT is
// written to a temporary file beside it, synced and renamed only on
// success, so a failure never leaves a partial file under the final name;
// write-back of the temporary file starts while it is written (outFile).
func runCrypt(cmd *cobra.Command, args []string, verb string, fn func(context.Context, stream.KeyProvider, io.Writer, io.Reader) error) (err error) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	inName, outName := "-", "-"
	if len(args) > 0 {
		inName = args[0]
	}
	if len(args) > 1 {
		outName = args[1]
	}
	var src io.Reader = cmd.InOrStdin()
	size := int64(-1)
	if inName != "-" {
		f, err := os.Open(inName)
		if err != nil {
			return fmt.Errorf("%s: %w", verb, err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		src = f
	}
	if term.IsTerminal(int(os.Stderr.Fd())) {
		bar := progressbar.DefaultBytes(size, verb+"ing")
		defer bar.Close()
		r := progressbar.NewReader(src, bar)
		src = &r
	}
	p, err := awskms.Load(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	if outName == "-" {
		if err := fn(ctx, p, cmd.OutOrStdout(), src); err != nil {
			return fmt.Errorf("%s: %w", verb, err)
		}
		return nil
	}
	var fillErr error
	err = atomicfile.Write(outName, 0o600, func(f *os.File) error {
		o := newOutFile(f)
		fillErr = fn(ctx, p, o, src)
		o.stop()
		return fillErr
	})
	switch {
	case fillErr != nil:
		return fmt.Errorf("%s %s: %w", verb, inName, fillErr)
	case err != nil:
		return fmt.Errorf("%s: %w", verb, err)
	}
	return nil
}
