package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "coffer.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigPrecedence: flag > environment > file > default, for each
// combination of where the setting is given.
func TestConfigPrecedence(t *testing.T) {
	for _, tc := range []struct {
		name             string
		flag, env, file  string
		want, wantSource string
	}{
		{"default", "", "", "", DefaultListen, fromDefault},
		{"file", "", "", "10.0.0.3:1", "10.0.0.3:1", fromFile},
		{"env over file", "", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.2:1", fromEnv},
		{"env", "", "10.0.0.2:1", "", "10.0.0.2:1", fromEnv},
		{"flag over env and file", "10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.1:1", fromFlag},
		{"flag over file", "10.0.0.1:1", "", "10.0.0.3:1", "10.0.0.1:1", fromFlag},
		{"flag", "10.0.0.1:1", "", "", "10.0.0.1:1", fromFlag},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := "region: eu-west-1\n"
			if tc.file != "" {
				body += "listen: " + tc.file + "\n"
			}
			args := []string{"--config", writeConfig(t, body)}
			if tc.flag != "" {
				args = append(args, "--listen", tc.flag)
			}
			if tc.env != "" {
				t.Setenv("COFFER_LISTEN", tc.env)
			} else {
				os.Unsetenv("COFFER_LISTEN")
			}
			cmd := newServeCmd()
			if err := cmd.ParseFlags(args); err != nil {
				t.Fatal(err)
			}
			rc, err := resolveConfig(cmd)
			if err != nil {
				t.Fatal(err)
			}
			if got := cmd.Flags().Lookup("listen").Value.String(); got != tc.want || rc.source["listen"] != tc.wantSource {
				t.Fatalf("listen %q from %s, want %q from %s", got, rc.source["listen"], tc.want, tc.wantSource)
			}
			if got := cmd.Flags().Lookup("region").Value.String(); got != "eu-west-1" || rc.source["region"] != fromFile {
				t.Fatalf("region %q from %s", got, rc.source["region"])
			}
		})
	}
}

// TestConfigMalformedNamesTheLine: every refusal names the file and line.
func TestConfigMalformedNamesTheLine(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"listen: 127.0.0.1:1\nlisen: x\n", `:2: unknown key "lisen"`},
		{"# comment\n\ngc-percent: lots\n", `:3: gc-percent: want an integer, not a string`},
		{"audit: yes please\n", `:1: audit: want true or false`},
		{"listen: 127.0.0.1:1\nshutdown-timeout: 30\n", `:2: shutdown-timeout: want a duration`},
		{"listen: 127.0.0.1:1\nshutdown-timeout: soon\n", `:2: shutdown-timeout: invalid argument`},
		{"listen:\n  - a\n", `:2: listen: want a string value, not a list`},
		{"listen: [a\n", `:1:`},
		{"region: a\nregion: b\n", `:2:`},
		{"config: other.yaml\n", `:1: unknown key "config"`},
		{"rate-limits:\n  default:\n    cryptographic: 1\n  acounts: {}\n", `:4: unknown field "acounts"`},
		{"rate-limits:\n  default:\n    cryptographic: lots\n", `:3:`},
		{"listen: x\nrate-limits:\n  default:\n    Encrypt: 5\n", `:3: rate limits default: "Encrypt"`},
	} {
		path := writeConfig(t, tc.body)
		cmd := newServeCmd()
		if err := cmd.ParseFlags([]string{"--config", path}); err != nil {
			t.Fatal(err)
		}
		rc, err := resolveConfig(cmd)
		if err == nil {
			_, err = rateLimitsOf(rc.file)
		}
		if err == nil || !strings.Contains(err.Error(), path+tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.body, err, path+tc.want)
		}
	}
}

// TestConfigPrintRedactsSecrets: config print shows where each value came
// from and never a secret, whether from a flag, the file or the environment.
func TestConfigPrintRedactsSecrets(t *testing.T) {
	path := writeConfig(t, "pkcs11-pin-file: /run/secrets/pin-s3cr3t-path\nlisten: 127.0.0.1:9999\n")
	t.Setenv("COFFER_PKCS11_PIN", "pin-s3cr3t-env")
	t.Setenv("COFFER_ROOT_PASSPHRASE", "passphrase-s3cr3t")
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"config", "print", "--config", path, "--region", "eu-west-1"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if strings.Contains(text, "s3cr3t") {
		t.Fatalf("config print shows a secret:\n%s", text)
	}
	for _, want := range []string{`listen: "127.0.0.1:9999" # file`, `region: "eu-west-1" # flag`, `data-dir: "./coffer-data" # default`,
		`pkcs11-pin-file: "REDACTED" # file`, `# COFFER_PKCS11_PIN: "REDACTED"`, `# COFFER_ROOT_PASSPHRASE: "REDACTED"`, "rate-limits: {}"} {
		if !strings.Contains(text, want) {
			t.Errorf("config print lacks %s:\n%s", want, text)
		}
	}
	// The output is itself a configuration file that gives the same result.
	again := writeConfig(t, strings.ReplaceAll(text, `"REDACTED"`, `""`))
	cmd := newServeCmd()
	cmd.ParseFlags([]string{"--config", again})
	if _, err := resolveConfig(cmd); err != nil {
		t.Fatalf("config print's output does not load: %v", err)
	}
	if got := cmd.Flags().Lookup("region").Value.String(); got != "eu-west-1" {
		t.Fatalf("region %q after reloading the printed configuration", got)
	}
}

// TestConfigReadmeExample parses the README's annotated example, so that
// it stays a valid file with every key it shows, and checks it names
// every flag of coffer serve.
func TestConfigReadmeExample(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "<!-- config:begin -->\n```yaml\n")
	block, _, ok2 := strings.Cut(block, "```\n<!-- config:end -->")
	if !ok || !ok2 {
		t.Fatal("README has no config:begin/config:end block")
	}
	path := writeConfig(t, block)
	cmd := newServeCmd()
	cmd.ParseFlags([]string{"--config", path})
	rc, err := resolveConfig(cmd)
	if err != nil {
		t.Fatal(err)
	}
	limits, err := rateLimitsOf(rc.file)
	if err != nil {
		t.Fatal(err)
	}
	if limits.Accounts["444455556666"]["cryptographic"] != 100 {
		t.Fatalf("rate limits %+v", limits)
	}
	if rc.file.rateLimits == nil {
		t.Fatal("the example has no rate-limits")
	}
	for name, src := range rc.source {
		if name != configFlag && name != "help" && src != fromFile {
			t.Errorf("the README's example lacks the key %s", name)
		}
	}
}

// TestConfigPrintRedactsPostgresPassword: the password of --postgres-url
// never shows, from a flag, COFFER_POSTGRES_URL or the file, while the
// user, host and database do.
func TestConfigPrintRedactsPostgresPassword(t *testing.T) {
	const url = "postgres://coffer:pw-s3cr3t@db.internal:5432/kms?sslmode=require"
	const want = `postgres-url: "postgres://coffer:xxxxx@db.internal:5432/kms?sslmode=require"`
	for _, tc := range []struct {
		name       string
		args       []string
		env, file  string
		wantSource string
	}{
		{"flag", []string{"--postgres-url", url}, "", "", fromFlag},
		{"environment", nil, url, "", fromEnv},
		{"file", nil, "", "postgres-url: " + url + "\n", fromFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("COFFER_POSTGRES_URL", tc.env)
			} else {
				t.Setenv("COFFER_POSTGRES_URL", "")
				os.Unsetenv("COFFER_POSTGRES_URL")
			}
			args := append([]string{"config", "print"}, tc.args...)
			if tc.file != "" {
				args = append(args, "--config", writeConfig(t, tc.file))
			}
			root := newRootCmd()
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetArgs(args)
			if err := root.Execute(); err != nil {
				t.Fatal(err)
			}
			text := out.String()
			if strings.Contains(text, "s3cr3t") {
				t.Fatalf("config print shows the database password:\n%s", text)
			}
			if !strings.Contains(text, want+" # "+tc.wantSource) {
				t.Fatalf("config print lacks %s # %s:\n%s", want, tc.wantSource, text)
			}
		})
	}
}

// TestRedactURL: every form of connection string PostgreSQL takes.
func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                                "",
		"postgres://coffer@db/kms":        "postgres://coffer@db/kms",
		"postgres://coffer:s3cr3t@db/kms": "postgres://coffer:xxxxx@db/kms",
		"postgresql://coffer:s%40cr3t@db:5432/kms":           "postgresql://coffer:xxxxx@db:5432/kms",
		"postgres://db/kms?user=c&password=s3cr3t":           "postgres://db/kms?password=xxxxx&user=c",
		"postgres://coffer:s3cr3t@db:port/kms":               "postgres://coffer:xxxxx@db:port/kms",
		"host=db user=coffer password=s3cr3t dbname=kms":     "host=db user=coffer password=xxxxx dbname=kms",
		"host=db password = 's3 cr\\'3t' dbname=kms":         "host=db password = xxxxx dbname=kms",
		"host=db user=coffer PASSWORD=s3cr3t sslmode=verify": "host=db user=coffer PASSWORD=xxxxx sslmode=verify",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
