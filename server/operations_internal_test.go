package server

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/kms"
)

// TestEveryOperationServed: the server's dispatch is the catalogue's rows,
// all of them, each under its API, and nothing else.
func TestEveryOperationServed(t *testing.T) {
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := kms.New(kms.Config{Region: "us-east-1", Account: "111122223333", Store: keystore.NewMemory(), Root: root})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	served := map[kms.API]map[string]*operation{kms.APIKMS: s.ops, kms.APIAdmin: s.admin}
	rows := 0
	for _, row := range kms.Operations() {
		if row.API == kms.APISTS {
			if _, known := s.metrics.ops[row.Name]; !known {
				t.Errorf("STS %s has no metrics", row.Name)
			}
			continue
		}
		rows++
		o, ok := served[row.API][row.Name]
		if !ok {
			t.Errorf("%s is in the catalogue but not served", row.Name)
			continue
		}
		if o.row != row || o.name != row.Name {
			t.Errorf("%s is served with another row", row.Name)
		}
		if _, known := s.metrics.ops[row.Name]; !known {
			t.Errorf("%s has no metrics", row.Name)
		}
	}
	if n := len(s.ops) + len(s.admin); n != rows {
		t.Errorf("%d operations served, %d rows", n, rows)
	}
	// The STS transport serves exactly the STS rows.
	for _, name := range []string{"AssumeRole", "GetCallerIdentity"} {
		if _, ok := kms.LookupOperation(kms.APISTS, name); !ok {
			t.Errorf("STS serves %s, which has no row", name)
		}
	}
}

// TestAuditAllowList renders every operation's input with every member set
// to a canary and checks that the audit record carries exactly the members
// its catalogue row allows: no other, whatever its name. The hot
// operations' hand-written renderers are held to the same rows.
func TestAuditAllowList(t *testing.T) {
	for _, row := range kms.Operations() {
		m, ok := row.Method()
		if !ok {
			continue
		}
		in := m.NewInput()
		members := fillCanaries(t, reflect.ValueOf(in).Elem())
		raw := appendRequestParameters(nil, row, in)
		var got map[string]json.RawMessage
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Errorf("%s: audit parameters %q: %v", row.Name, raw, err)
			continue
		}
		for name := range got {
			member := strings.ToUpper(name[:1]) + name[1:]
			if !row.Audited(member) {
				t.Errorf("%s: member %s audited, not in the row's allow-list", row.Name, member)
			}
		}
		for _, member := range members {
			lower := strings.ToLower(member[:1]) + member[1:]
			_, present := got[lower]
			if allowed := row.Audited(member); allowed != present {
				t.Errorf("%s: member %s allowed=%v, audited=%v", row.Name, member, allowed, present)
			}
			// The canary as a whole JSON string (so that the audited
			// MessageType's "canary-MessageType" is not taken for
			// Message's), raw or base64-encoded as a []byte member is.
			canary := "canary-" + member
			if !row.Audited(member) && (strings.Contains(string(raw), `"`+canary+`"`) ||
				strings.Contains(string(raw), base64.StdEncoding.EncodeToString([]byte(canary)))) {
				t.Errorf("%s: the value of %s reached the audit record", row.Name, member)
			}
		}
	}
}

// fillCanaries sets every member of the struct v to a non-empty value
// naming it, and returns the JSON member names it set.
func fillCanaries(t *testing.T, v reflect.Value) []string {
	var names []string
	for i := range v.NumField() {
		f, sf := v.Field(i), v.Type().Field(i)
		if sf.Anonymous && f.Kind() == reflect.Struct {
			names = append(names, fillCanaries(t, f)...)
			continue
		}
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "" {
			name = sf.Name
		}
		canary := "canary-" + name
		switch f.Kind() {
		case reflect.String:
			f.SetString(canary)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Slice:
			switch f.Type().Elem().Kind() {
			case reflect.Uint8:
				if f.Type() == reflect.TypeFor[json.RawMessage]() {
					f.SetBytes([]byte(`"` + canary + `"`))
				} else {
					f.SetBytes([]byte(canary))
				}
			case reflect.String:
				f.Set(reflect.ValueOf([]string{canary}))
			case reflect.Struct:
				e := reflect.New(f.Type().Elem()).Elem()
				fillCanaries(t, e)
				f.Set(reflect.Append(reflect.MakeSlice(f.Type(), 0, 1), e))
			default:
				t.Fatalf("%s: a slice of %v", name, f.Type().Elem())
			}
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]string{"k": canary}))
		case reflect.Pointer:
			p := reflect.New(f.Type().Elem())
			switch p.Elem().Kind() {
			case reflect.Int:
				p.Elem().SetInt(7)
			case reflect.String:
				p.Elem().SetString(canary)
			case reflect.Bool:
				p.Elem().SetBool(true)
			case reflect.Struct:
				fillCanaries(t, p.Elem())
			default:
				t.Fatalf("%s: a pointer to %v", name, f.Type().Elem())
			}
			f.Set(p)
		case reflect.Int:
			f.SetInt(7)
		case reflect.Struct:
			fillCanaries(t, f)
		default:
			t.Fatalf("%s: a %v", name, f.Kind())
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
