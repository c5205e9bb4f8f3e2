package server_test

import (
	"testing"

	"github.com/coffer-kms/coffer/kms"
)

// TestUnsupportedOperations: every operation of AWS's KMS model the
// catalogue does not serve answers UnsupportedOperationException naming
// it; every one it serves is dispatched; a name that is no AWS KMS
// operation stays UnknownOperationException.
func TestUnsupportedOperations(t *testing.T) {
	e := newEnv(t)
	unserved := 0
	for _, name := range kms.AWSOperations {
		status, code, msg, raw := e.send(t, rawRequest{target: "TrentService." + name, body: `{"KeyId":"alias/none","DryRun":true}`})
		if _, served := kms.LookupOperation(kms.APIKMS, name); served {
			if code == "UnsupportedOperationException" && msg == "Coffer does not serve "+name+" yet." || code == "UnknownOperationException" {
				t.Errorf("%s is served, but answered %d %s", name, status, raw)
			}
			continue
		}
		unserved++
		if status != 400 || code != "UnsupportedOperationException" || msg != "Coffer does not serve "+name+" yet." {
			t.Errorf("%s: %d %s, want 400 UnsupportedOperationException naming it", name, status, raw)
		}
	}
	t.Logf("%d of AWS's %d operations not served yet", unserved, len(kms.AWSOperations))
	for _, target := range []string{"TrentService.MakeCoffee", "TrentService.CreateUser", "TrentService.sign", "TrentService.", "KMS.Sign", "Sign"} {
		status, code, msg, _ := e.send(t, rawRequest{target: target, body: "{}"})
		if status != 400 || code != "UnknownOperationException" || msg != "" {
			t.Errorf("%s: %d %s %q, want UnknownOperationException", target, status, code, msg)
		}
	}
	// Before the signature, as an unknown operation.
	for _, name := range kms.AWSOperations {
		if _, served := kms.LookupOperation(kms.APIKMS, name); served {
			continue
		}
		status, code, _, _ := e.send(t, rawRequest{target: "TrentService." + name, body: "{}", unsigned: true})
		if status != 400 || code != "UnsupportedOperationException" {
			t.Errorf("unsigned %s: %d %s", name, status, code)
		}
		break
	}
}
