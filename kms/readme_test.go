package kms

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReadmeOperationTable: README's operation table lists AWS's 54
// operations, each marked served exactly when the catalogue serves it.
// COFFER_WRITE_README=1 rewrites the table from the catalogue.
func TestReadmeOperationTable(t *testing.T) {
	path := filepath.Join("..", "README.md")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Skip("README.md is not beside the package (not a checkout)")
	}
	const begin, end = "<!-- operations:begin (kms/readme_test.go checks this table against the catalogue) -->\n", "<!-- operations:end -->"
	s := string(raw)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal("README.md has no operation table markers")
	}
	want := operationTable()
	if got := s[i+len(begin) : j]; got != want {
		if os.Getenv("COFFER_WRITE_README") != "" {
			if err := os.WriteFile(path, []byte(s[:i+len(begin)]+want+s[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("README.md's operation table is not the catalogue's (COFFER_WRITE_README=1 go test -run ReadmeOperationTable ./kms rewrites it):\n%s", want)
	}
}

func operationTable() string {
	names := slices.Clone(AWSOperations)
	slices.Sort(names)
	var b strings.Builder
	b.WriteString("| operation | served | KeyId forms | readOnly |\n|---|---|---|---|\n")
	for _, n := range names {
		o, ok := LookupOperation(APIKMS, n)
		if !ok {
			b.WriteString("| " + n + " | not yet: UnsupportedOperationException | | |\n")
			continue
		}
		forms := "—"
		if len(o.Keys) > 0 {
			forms = "key ID, key ARN"
			if o.Keys[0].Forms&FormAliasName != 0 {
				forms = "key ID, key ARN, alias name, alias ARN"
			}
		}
		ro := "no"
		if o.ReadOnly {
			ro = "yes"
		}
		b.WriteString("| " + n + " | yes | " + forms + " | " + ro + " |\n")
	}
	return b.String()
}
