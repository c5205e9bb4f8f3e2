package server_test

import (
	"encoding/base64"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
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
