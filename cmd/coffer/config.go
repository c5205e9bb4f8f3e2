package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The configuration file is YAML with one key per flag of `coffer serve`,
// named as the flag is (listen, data-dir, tls-cert …): the keys are the
// flag set's, so a new flag is a new key with nothing more to write. Its
// other key, rate-limits, is the per-account request quotas, which no
// flag holds. Precedence: a flag given on the command line, then
// COFFER_<FLAG> in the environment, then the file, then the default.

// configFlag is the flag that names the file.
const configFlag = "config"

// rateLimitsKey is the file's one key that is not a flag.
const rateLimitsKey = "rate-limits"

// Where a setting came from, as `coffer config print` reports it.
const (
	fromFlag    = "flag"
	fromEnv     = "environment"
	fromFile    = "file"
	fromDefault = "default"
)

// configFile is a parsed configuration file.
type configFile struct {
	path   string
	values map[string]configValue // by flag name
	// rateLimits is the rate-limits subtree (nil when absent).
	rateLimits ast.Node
}

type configValue struct {
	node ast.Node
	line int
}

// resolvedConfig is the effective configuration of a command.
type resolvedConfig struct {
	file   *configFile       // nil without --config
	source map[string]string // flag name → fromFlag, fromEnv, fromFile or fromDefault
}

// addConfigFlag adds --config to cmd.
func addConfigFlag(cmd *cobra.Command) {
	cmd.Flags().String(configFlag, "", "YAML configuration file: every flag as a key (flag > COFFER_ environment > file > default)")
}

// resolveConfig settles every flag of cmd: those given stay, the
// environment fills what they left, then the file named by --config (or
// COFFER_CONFIG).
func resolveConfig(cmd *cobra.Command) (*resolvedConfig, error) {
	fs := cmd.Flags()
	rc := &resolvedConfig{source: map[string]string{}}
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			rc.source[f.Name] = fromFlag
		}
	})
	if err := bindEnv(cmd); err != nil {
		return nil, err
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if _, ok := rc.source[f.Name]; !ok && f.Changed {
			rc.source[f.Name] = fromEnv
		}
	})
	if path, _ := fs.GetString(configFlag); path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--config: %w", err)
		}
		cf, err := parseConfig(path, raw, fs)
		if err != nil {
			return nil, err
		}
		for name, v := range cf.values {
			f := fs.Lookup(name)
			if f.Changed {
				continue
			}
			if err := fs.Set(name, scalarText(v.node)); err != nil {
				return nil, fmt.Errorf("%s:%d: %s: %v", path, v.line, name, err)
			}
			rc.source[name] = fromFile
		}
		rc.file = cf
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if _, ok := rc.source[f.Name]; !ok {
			rc.source[f.Name] = fromDefault
		}
	})
	return rc, nil
}

// parseConfig reads a configuration file against the flags of fs. Every
// error names the file and line.
func parseConfig(path string, raw []byte, fs *pflag.FlagSet) (*configFile, error) {
	cf := &configFile{path: path, values: map[string]configValue{}}
	file, err := parser.ParseBytes(raw, 0)
	if err != nil {
		return nil, yamlError(path, err)
	}
	if len(file.Docs) > 1 {
		return nil, fmt.Errorf("%s: one YAML document expected, found %d", path, len(file.Docs))
	}
	if len(file.Docs) == 0 || file.Docs[0].Body == nil {
		return cf, nil // an empty file configures nothing
	}
	body := file.Docs[0].Body
	if c, ok := body.(*ast.CommentGroupNode); ok && c != nil {
		return cf, nil
	}
	var pairs []*ast.MappingValueNode
	switch m := body.(type) {
	case *ast.MappingNode:
		pairs = m.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{m}
	default:
		return nil, fmt.Errorf("%s:%d: the file must be a mapping of keys to values", path, line(body))
	}
	for _, kv := range pairs {
		key := kv.Key.GetToken().Value
		l := line(kv.Key)
		if _, dup := cf.values[key]; dup || (key == rateLimitsKey && cf.rateLimits != nil) {
			return nil, fmt.Errorf("%s:%d: key %q given twice", path, l, key)
		}
		if key == rateLimitsKey {
			cf.rateLimits = kv.Value
			continue
		}
		f := fs.Lookup(key)
		if f == nil || key == configFlag || key == "help" {
			return nil, fmt.Errorf("%s:%d: unknown key %q", path, l, key)
		}
		if err := checkType(f, kv.Value); err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %v", path, line(kv.Value), key, err)
		}
		cf.values[key] = configValue{node: kv.Value, line: line(kv.Value)}
	}
	return cf, nil
}

// checkType refuses a value whose YAML type cannot be the flag's.
func checkType(f *pflag.Flag, n ast.Node) error {
	t := n.Type()
	switch t {
	case ast.MappingType, ast.MappingValueType, ast.SequenceType, ast.NullType, ast.AnchorType, ast.AliasType, ast.TagType:
		return fmt.Errorf("want a %s value, not %s", typeName(f), nodeKind(t))
	}
	switch f.Value.Type() {
	case "bool":
		if t != ast.BoolType {
			return fmt.Errorf("want true or false, not %s", nodeKind(t))
		}
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		if t != ast.IntegerType {
			return fmt.Errorf("want an integer, not %s", nodeKind(t))
		}
	case "duration":
		if t != ast.StringType {
			return fmt.Errorf("want a duration such as 30s or 5m, not %s", nodeKind(t))
		}
	}
	return nil
}

func typeName(f *pflag.Flag) string {
	if f.Value.Type() == "duration" {
		return "duration"
	}
	return f.Value.Type()
}

func nodeKind(t ast.NodeType) string {
	switch t {
	case ast.StringType, ast.LiteralType:
		return "a string"
	case ast.IntegerType:
		return "an integer"
	case ast.FloatType:
		return "a number"
	case ast.BoolType:
		return "a boolean"
	case ast.MappingType, ast.MappingValueType:
		return "a mapping"
	case ast.SequenceType:
		return "a list"
	case ast.NullType:
		return "an empty value"
	}
	return t.String()
}

// scalarText is a scalar's text as a flag would take it.
func scalarText(n ast.Node) string {
	if s, ok := n.(*ast.StringNode); ok {
		return s.Value
	}
	return n.GetToken().Value
}

func line(n ast.Node) int {
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

// yamlError names the file and line of a YAML library error.
func yamlError(path string, err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil && ye.GetToken().Position != nil {
		return fmt.Errorf("%s:%d: %s", path, ye.GetToken().Position.Line, ye.GetMessage())
	}
	return fmt.Errorf("%s: %v", path, err)
}

// secretName matches the settings whose values config print never shows.
var secretName = regexp.MustCompile(`(?i)pin|passphrase|secret|password`)

// envSecrets are secrets read from the environment only.
var envSecrets = []string{"COFFER_ROOT_PASSPHRASE", "COFFER_PKCS11_PIN"}

const redacted = `"REDACTED"`

// printConfig writes the effective configuration of fs as a YAML file
// that `--config` would take, each line commented with its source.
func printConfig(w io.Writer, fs *pflag.FlagSet, rc *resolvedConfig, extra func(io.Writer)) {
	if rc.file != nil {
		fmt.Fprintf(w, "# effective configuration (file: %s)\n", rc.file.path)
	} else {
		fmt.Fprintln(w, "# effective configuration (no --config file)")
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == configFlag || f.Name == "help" {
			return
		}
		fmt.Fprintf(w, "%s: %s # %s\n", f.Name, yamlScalar(f), rc.source[f.Name])
	})
	if extra != nil {
		extra(w)
	}
	for _, name := range envSecrets {
		if _, ok := os.LookupEnv(name); ok {
			fmt.Fprintf(w, "# %s: %s (environment)\n", name, redacted)
		}
	}
}

func yamlScalar(f *pflag.Flag) string {
	v := f.Value.String()
	if secretName.MatchString(f.Name) && v != "" {
		return redacted
	}
	if strings.HasSuffix(f.Name, "-url") {
		v = redactURL(v)
	}
	switch f.Value.Type() {
	case "bool", "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return v
	}
	q, _ := json.Marshal(v) // a JSON string is a YAML double-quoted scalar
	return string(q)
}

// redactedPassword replaces the password of a connection URL.
const redactedPassword = "xxxxx"

// libpqPassword matches the password of a libpq keyword/value connection
// string: password=secret or password='se cret'.
var libpqPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s']+)`)

// urlUserPassword matches the user:password@ of a URL that does not parse.
var urlUserPassword = regexp.MustCompile(`(://[^:/@]*:)[^/]*@`)

// redactURL hides the password of a connection string (--postgres-url,
// from a flag, COFFER_POSTGRES_URL or the file): a URL's
// user:password@ and ?password=, or libpq's password=…, keeping the user,
// host and database so that the printed configuration still says where it
// connects. A value that does not parse as a URL is treated as libpq's
// keyword/value form.
func redactURL(v string) string {
	if v == "" {
		return v
	}
	u, err := url.Parse(v)
	switch {
	case err != nil && strings.Contains(v, "://"):
		// A URL net/url refuses (a bad port, say) still hides its password.
		v = urlUserPassword.ReplaceAllString(v, "${1}"+redactedPassword+"@")
		return libpqPassword.ReplaceAllString(v, "${1}"+redactedPassword)
	case err != nil || u.Scheme == "" || u.Opaque != "":
		return libpqPassword.ReplaceAllString(v, "${1}"+redactedPassword)
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), redactedPassword)
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", redactedPassword)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect the configuration of coffer serve"}
	serve := newServeCmd()
	print := &cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration (flags, COFFER_ environment, --config file, defaults) with secrets redacted",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			rc, err := resolveConfig(c)
			if err != nil {
				return err
			}
			limits, err := rateLimitsOf(rc.file)
			if err != nil {
				return err
			}
			printConfig(c.OutOrStdout(), c.Flags(), rc, func(w io.Writer) { printRateLimits(w, limits) })
			return nil
		},
	}
	print.Flags().AddFlagSet(serve.Flags())
	cmd.AddCommand(print)
	return cmd
}
