package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

func TestUsageCountsPerKeyAndOperation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.createKey("metered")
	arn := "arn:aws:kms:us-east-1:111122223333:key/" + id
	var blob []byte
	for range 3 {
		enc := must[*awskms.EncryptOutput](t)(e.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("x")}))
		blob = enc.CiphertextBlob
	}
	must[*awskms.DecryptOutput](t)(e.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blob}))
	calls := func() map[string]float64 {
		resp, err := http.Get(e.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		out := map[string]float64{}
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.HasPrefix(line, "coffer_usage_calls_total{") && strings.Contains(line, arn) {
				var n float64
				op := line[strings.Index(line, `operation="`)+11:]
				op = op[:strings.IndexByte(op, '"')]
				_, v, _ := strings.Cut(line, "} ")
				for _, c := range v {
					n = n*10 + float64(c-'0')
				}
				out[op] = n
			}
		}
		if !strings.Contains(string(raw), `coffer_requests_total{operation="Encrypt",code="OK"}`) {
			t.Fatalf("no request counter in /metrics:\n%.2000s", raw)
		}
		return out
	}
	got := calls()
	if got["Encrypt"] != 3 || got["Decrypt"] != 1 {
		t.Fatalf("usage before flush: %v", got)
	}
	// Counts survive a restart (Close flushes them to the store).
	e.restart()
	got = calls()
	if got["Encrypt"] != 3 || got["Decrypt"] != 1 || got["CreateKey"] != 1 {
		t.Fatalf("usage after restart: %v", got)
	}
}
