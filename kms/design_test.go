package kms

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// designConst is a string constant DESIGN.md must document.
type designConst struct {
	dir, file, name string
	lit             string // the value as written in Go, without the quotes
}

// collectConsts parses every non-test Go file under root and returns the
// string constants for which want reports true.
func collectConsts(t *testing.T, root string, want func(dir, name string) bool) []designConst {
	t.Helper()
	var out []designConst
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		dir, _ := filepath.Rel(root, filepath.Dir(path))
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if !want(filepath.ToSlash(dir), id.Name) {
						continue
					}
					var lit *ast.BasicLit
					if i < len(vs.Values) {
						lit, _ = vs.Values[i].(*ast.BasicLit)
					}
					if lit == nil || lit.Kind != token.STRING || !strings.HasPrefix(lit.Value, `"`) {
						t.Errorf("%s: %s must be an interpreted string literal, so that DESIGN.md can quote it", fset.Position(id.Pos()), id.Name)
						continue
					}
					out = append(out, designConst{dir: filepath.ToSlash(dir), file: name, name: id.Name, lit: lit.Value[1 : len(lit.Value)-1]})
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// isLabel is the naming rule of domain-separation labels: label… (Label…
// when exported), or …KeyLabel for a PKCS#11 object label.
func isLabel(_, name string) bool {
	return strings.HasPrefix(name, "label") || strings.HasPrefix(name, "Label") || strings.HasSuffix(name, "KeyLabel")
}

// tableRow reports whether some table row of doc quotes both the value and
// the constant's name.
func tableRow(doc []byte, c designConst) bool {
	for line := range bytes.Lines(doc) {
		if bytes.HasPrefix(line, []byte("|")) &&
			bytes.Contains(line, []byte("`"+c.lit+"`")) && bytes.Contains(line, []byte("`"+c.name+"`")) {
			return true
		}
	}
	return false
}

// TestDesignDocumentsEveryLabelAndBucket keeps DESIGN.md true: every
// domain-separation label in the repository and every store bucket has a
// row there, with its bytes as the code has them.
func TestDesignDocumentsEveryLabelAndBucket(t *testing.T) {
	root := ".."
	doc, err := os.ReadFile(filepath.Join(root, "DESIGN.md"))
	if err != nil {
		t.Fatal(err)
	}

	labels := collectConsts(t, root, isLabel)
	if len(labels) < 15 { // what the repository had when this test was written
		t.Fatalf("found %d labels, want at least 15: is the walk broken?", len(labels))
	}
	perDir := map[string]int{}
	for _, c := range labels {
		perDir[c.dir]++
	}
	for _, c := range labels {
		if !tableRow(doc, c) {
			t.Errorf("DESIGN.md's label table has no row with `%s` and `%s` (%s/%s)", c.lit, c.name, c.dir, c.file)
		}
		if perDir[c.dir] > 1 && c.file != "labels.go" {
			t.Errorf("%s/%s: %s: a package with %d labels keeps them all in labels.go", c.dir, c.file, c.name, perDir[c.dir])
		}
	}

	buckets := collectConsts(t, root, func(dir, name string) bool { return dir == "kms" && strings.HasPrefix(name, "bucket") })
	if len(buckets) < 8 {
		t.Fatalf("found %d buckets, want at least 8: is the walk broken?", len(buckets))
	}
	for _, c := range buckets {
		if !tableRow(doc, c) {
			t.Errorf("DESIGN.md's store schema has no row with `%s` and `%s`", c.lit, c.name)
		}
	}
}

// TestLabelBytes pins the additional data kms builds from its labels: these
// bytes are in every data dir and must never change.
func TestLabelBytes(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{string(materialAAD("arn:aws:kms:us-east-1:111122223333:key/k", 3)), "coffer/key-material/v1|arn:aws:kms:us-east-1:111122223333:key/k|3"},
		{string(secretAAD("AKIAEXAMPLE")), "coffer/access-key/v1|AKIAEXAMPLE"},
		{string(tokenKeyAAD), "coffer/sts-token-key/v1"},
		{string(tokenKeyID[:]), "coffer/sts/token"},
		{tokenContext["coffer:purpose"], "sts-session-token"},
		{strconv.Itoa(len(tokenContext)), "1"},
		{string(auditKeyAAD), "coffer/audit-signing-key/v1"},
		{labelCustomKeyStoreKey + "k", "coffer-cks/k"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
