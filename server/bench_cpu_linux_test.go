package server_test

import (
	"encoding/base64"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/coffer-kms/coffer/audit"
)

// BenchmarkEncryptDecrypt is Encrypt beside Decrypt with the load
// generator's request bodies (bench/load.go: 1 KiB of plaintext, the same
// encryption context on both), reporting beside the wall time the
// process's CPU time per request (cpu-ns/op, getrusage): on a machine
// shared with other work the wall time swings with the load, while CPU
// time is what the server spends, the load harness's "server CPU per
// request" without the sockets.
func BenchmarkEncryptDecrypt(b *testing.B) {
	h, creds, id := benchServer(b)
	pt := base64.StdEncoding.EncodeToString(make([]byte, 1024))
	const ec = `,"EncryptionContext":{"purpose":"bench"}}`
	enc := serveSigned(b, h, creds, "Encrypt", `{"KeyId":"`+id+`","Plaintext":"`+pt+`"`+ec)
	_, blob, _ := strings.Cut(enc, `"CiphertextBlob":"`)
	blob, _, _ = strings.Cut(blob, `"`)
	for _, tc := range []struct{ op, body string }{
		{"Encrypt", `{"KeyId":"` + id + `","Plaintext":"` + pt + `"` + ec},
		{"Decrypt", `{"CiphertextBlob":"` + blob + `"` + ec},
	} {
		b.Run("op="+tc.op, func(b *testing.B) {
			req := signedRequest(b, creds, tc.op, tc.body)
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				ctx.Init(req, nil, nil)
				h(&ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
				}
				ctx.Response.Reset()
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAuditCPU is BenchmarkHandlerAudited's load (64 requests in
// flight per CPU) with the audit off, written per interval
// (--audit-sync=interval:10ms) and committed per response, reporting the
// process's CPU time per request (cpu-ns/op): what the audit path adds to
// the server's CPU, the in-process half of issue 26's ratios.
func BenchmarkAuditCPU(b *testing.B) {
	pt := base64.StdEncoding.EncodeToString(make([]byte, 1024))
	for _, mode := range []struct {
		name     string
		audit    bool
		interval time.Duration
	}{
		{"off", false, 0},
		{"interval", true, 10 * time.Millisecond},
		{"commit", true, 0},
	} {
		var trail *audit.Writer
		if mode.audit {
			key, err := audit.GenerateSigningKey()
			if err != nil {
				b.Fatal(err)
			}
			if trail, err = audit.Open(audit.Config{Dir: b.TempDir(), Signer: key, SyncInterval: mode.interval}); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { trail.Close() })
		}
		h, creds, id := benchServerWith(b, trail)
		for _, tc := range []struct{ op, body string }{
			{"Encrypt", `{"KeyId":"` + id + `","Plaintext":"` + pt + `","EncryptionContext":{"purpose":"bench"}}`},
			{"GenerateDataKey", `{"KeyId":"` + id + `","KeySpec":"AES_256","EncryptionContext":{"purpose":"bench"}}`},
		} {
			req := signedRequest(b, creds, tc.op, tc.body)
			b.Run("audit="+mode.name+"/op="+tc.op, func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(64)
				var before audit.Stats
				if trail != nil {
					before = trail.Stats()
				}
				cpu0 := processCPU()
				b.RunParallel(func(pb *testing.PB) {
					var ctx fasthttp.RequestCtx
					var mine fasthttp.Request
					req.CopyTo(&mine)
					for pb.Next() {
						ctx.Init(&mine, nil, nil)
						h(&ctx)
						if ctx.Response.StatusCode() != 200 {
							b.Errorf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
							return
						}
						ctx.Response.Reset()
					}
				})
				b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
				if trail != nil {
					after := trail.Stats()
					if n := after.Batches - before.Batches; n > 0 {
						b.ReportMetric(float64(after.Records-before.Records)/float64(n), "records/write")
					}
				}
			})
		}
	}
}
