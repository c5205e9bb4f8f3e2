package kms

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestAWSOperations holds AWSOperations to AWS's model: sorted and unique
// (IsAWSOperation searches it), a superset of the operations the catalogue
// serves on the KMS API, and equal to the operation list of every copy of
// the model this machine has: botocore's service-2.json (installed with
// the AWS CLI v1 or boto3), and the reference notes the project keeps
// (aws-kms-api.md, its §1.1 table). With neither it checks the rest.
func TestAWSOperations(t *testing.T) {
	if !slices.IsSorted(AWSOperations) || len(slices.Compact(slices.Clone(AWSOperations))) != len(AWSOperations) {
		t.Fatal("AWSOperations must be sorted and without duplicates")
	}
	if len(AWSOperations) != 54 {
		t.Errorf("AWSOperations has %d names; AWS's model (2026) has 54", len(AWSOperations))
	}
	for _, o := range Operations() {
		if o.API == APIKMS && !IsAWSOperation(o.Name) {
			t.Errorf("the catalogue serves %s on the KMS API, which AWS's model does not have", o.Name)
		}
	}
	if IsAWSOperation("MakeCoffee") || IsAWSOperation("CreateUser") || IsAWSOperation("sign") {
		t.Error("IsAWSOperation accepts a name AWS's model does not have")
	}
	compared := 0
	for source, names := range modelOperations(t) {
		compared++
		slices.Sort(names)
		if !slices.Equal(names, AWSOperations) {
			t.Errorf("%s lists the operations\n%v\nAWSOperations has\n%v", source, names, AWSOperations)
		}
	}
	if compared == 0 {
		t.Log("no copy of AWS's KMS model found (botocore, aws-kms-api.md); compared with nothing")
	}
}

// modelOperations returns, per copy of AWS's KMS model found, its
// operation names.
func modelOperations(t *testing.T) map[string][]string {
	out := map[string][]string{}
	if py, err := exec.LookPath("python3"); err == nil {
		if dir, err := exec.Command(py, "-c", "import botocore, os; print(os.path.dirname(botocore.__file__))").Output(); err == nil {
			base := filepath.Join(strings.TrimSpace(string(dir)), "data", "kms", "2014-11-01", "service-2.json")
			for _, p := range []string{base, base + ".gz"} {
				if names := botocoreOperations(t, p); names != nil {
					out[p] = names
				}
			}
		}
	}
	for _, p := range []string{os.Getenv("COFFER_KMS_API_REFERENCE"), "/work/shared/reference/aws-kms-api.md"} {
		if p == "" {
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// The rows of §1.1: "| Operation | Purpose | …", up to §1.2.
		_, table, _ := strings.Cut(string(raw), "### 1.1")
		table, _, _ = strings.Cut(table, "### 1.2")
		var names []string
		for _, m := range regexp.MustCompile(`(?m)^\| ([A-Z][A-Za-z]+) \|`).FindAllStringSubmatch(table, -1) {
			if m[1] != "Operation" {
				names = append(names, m[1])
			}
		}
		out[p] = names
	}
	return out
}

func botocoreOperations(t *testing.T, path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		if r, err = gzip.NewReader(f); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	var model struct {
		Operations map[string]json.RawMessage `json:"operations"`
	}
	if err := json.NewDecoder(r).Decode(&model); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var names []string
	for name := range model.Operations {
		names = append(names, name)
	}
	return names
}
