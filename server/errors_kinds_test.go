package server

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/kms"
)

// serverFaults are the exceptions botocore's KMS model marks fault: true
// (reference §1, error legend): only these are the server's to answer with
// 5xx; every other exception is the caller's, 4xx.
var serverFaults = map[string]bool{
	"KMSInternalException":       true,
	"DependencyTimeoutException": true,
	"KeyUnavailableException":    true,
}

// declaredKinds reads kms/errors.go and returns, by variable name, the
// message of every exported Err… variable: the AWS exception name each
// kind is created with. Parsing rather than listing means a kind added to
// kms without a row in errorStatus fails TestErrorKindsHaveStatus.
func declaredKinds(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../kms/errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Err") || !name.IsExported() {
					continue
				}
				msg, ok := errorsNewArg(vs, i)
				if !ok {
					t.Errorf("kms.%s is not errors.New(\"<exception name>\"); this test cannot read its exception name", name.Name)
					continue
				}
				kinds[name.Name] = msg
			}
		}
	}
	return kinds
}

// errorsNewArg returns s of the i-th value of vs when it is errors.New(s)
// with s a string literal.
func errorsNewArg(vs *ast.ValueSpec, i int) (string, bool) {
	if i >= len(vs.Values) {
		return "", false
	}
	call, ok := vs.Values[i].(*ast.CallExpr)
	if !ok || len(call.Args) != 1 {
		return "", false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "New" {
		return "", false
	}
	if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "errors" {
		return "", false
	}
	lit, ok := call.Args[0].(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

func TestErrorKindsHaveStatus(t *testing.T) {
	kinds := declaredKinds(t)
	// A guard against a parse that finds nothing: kms/errors.go declares
	// at least these, the state and usage answers of the KMS model.
	for _, name := range []string{"ErrNotFound", "ErrDisabled", "ErrInvalidState", "ErrInvalidKeyUsage", "ErrInternal"} {
		if _, ok := kinds[name]; !ok {
			t.Fatalf("kms.%s not found in kms/errors.go; found %d kinds", name, len(kinds))
		}
	}

	rows := map[string]int{} // exception name → rows mapping it
	for _, e := range errorStatus {
		rows[e.kind.Error()]++
	}
	for name, exception := range kinds {
		switch n := rows[exception]; {
		case n == 0:
			t.Errorf("kms.%s (%s) has no row in server's errorStatus table", name, exception)
		case n > 1:
			t.Errorf("kms.%s (%s) has %d rows in errorStatus", name, exception, n)
		}
	}
	declared := map[string]bool{}
	for _, exception := range kinds {
		declared[exception] = true
	}
	for _, e := range errorStatus {
		if !declared[e.kind.Error()] {
			t.Errorf("errorStatus maps %q, which is no kind of kms/errors.go", e.kind.Error())
		}
	}

	// Each row answers as AWS does: code = exception name, 5xx exactly for
	// the three server faults, 4xx for every other exception.
	for _, e := range errorStatus {
		exception := e.kind.Error()
		code, status, msg := classify(&kms.Error{Kind: e.kind, Message: "m"})
		if code != exception || msg != "m" {
			t.Errorf("%s is sent as code %q message %q", exception, code, msg)
		}
		if status != e.status {
			t.Errorf("%s: classify answers %d, its row says %d", exception, status, e.status)
		}
		if serverFaults[exception] {
			if status < 500 || status > 599 {
				t.Errorf("%s is a server fault in AWS's model; status %d, want 5xx", exception, status)
			}
		} else if status < 400 || status > 499 {
			t.Errorf("%s is a caller fault in AWS's model; status %d, want 4xx", exception, status)
		}
	}
	for exception := range serverFaults {
		if !declared[exception] {
			t.Errorf("kms/errors.go declares no kind for AWS's server fault %s", exception)
		}
	}

	// A wrapped *kms.Error classifies like the bare one.
	code, status, _ := classify(errors.Join(errors.New("context"), &kms.Error{Kind: kms.ErrDisabled, Message: "d"}))
	if code != "DisabledException" || status != 400 {
		t.Errorf("wrapped DisabledException classified as %s %d", code, status)
	}
}

// A store that did not answer is AWS's dependency timeout (503, retried by
// the SDKs), whether the service wrapped the failure or passed it on; any
// other store failure stays KMSInternalException.
func TestClassifyStoreUnavailable(t *testing.T) {
	lost := fmt.Errorf("keystore/postgres: database unavailable (%w): dial tcp: connection refused", keystore.ErrUnavailable)
	if code, status, msg := classify(lost); code != "DependencyTimeoutException" || status != 503 || strings.Contains(msg, "dial") {
		t.Errorf("a lost store classified as %s %d %q", code, status, msg)
	}
	if code, status, _ := classify(errors.New("keystore/postgres: ERROR: disk full")); code != "KMSInternalException" || status != 500 {
		t.Errorf("another store failure classified as %s %d", code, status)
	}
}
