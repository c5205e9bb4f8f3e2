package audit

import (
	"encoding/json"
	"testing"
)

func TestParamsJSON(t *testing.T) {
	for _, c := range []struct {
		p    Params
		want string
	}{
		{Params{}, `{}`},
		{Params{KeyID: "alias/app", EncryptionContext: map[string]string{"z": "1", "a": "\"2\""}, EncryptionAlgorithm: "SYMMETRIC_DEFAULT"},
			`{"keyId":"alias/app","encryptionContext":{"a":"\"2\"","z":"1"},"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}`},
		{Params{KeyID: "k", KeySpec: "AES_256", NumberOfBytes: 32}, `{"keyId":"k","keySpec":"AES_256","numberOfBytes":32}`},
		{Params{SourceKeyID: "a", DestinationKeyID: "b", SourceEncryptionContext: map[string]string{"x": "y"}},
			`{"destinationKeyId":"b","sourceKeyId":"a","sourceEncryptionContext":{"x":"y"}}`},
		{Params{KeyID: "k", PendingWindowInDays: 7}, `{"keyId":"k","pendingWindowInDays":7}`},
	} {
		got := c.p.JSON()
		if string(got) != c.want || !json.Valid(got) {
			t.Errorf("%+v: %s, want %s", c.p, got, c.want)
		}
		if got := c.p.AppendJSON([]byte(`{"x":`)); string(got) != `{"x":`+c.want {
			t.Errorf("%+v appended to a prefix: %s, want the prefix and %s", c.p, got, c.want)
		}
	}
}
