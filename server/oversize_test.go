package server_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/coffer-kms/coffer/server/wire"
)

// rawAnswer is a response read off a raw connection.
type rawAnswer struct {
	status int
	header http.Header
	Type   string `json:"__type"`
	Msg    string `json:"message"`
	raw    string
}

// exchange writes head (request line and headers, CRLF-terminated, without
// the blank line) and a body of n bytes made by fill over a new
// connection, reading the answer while the body is still being written, as
// a client that streams its body does.
func exchange(t *testing.T, addr, head string, n int, fill func([]byte) []byte) rawAnswer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	go func() {
		w := bufio.NewWriterSize(conn, 64<<10)
		fmt.Fprintf(w, "%sContent-Length: %d\r\n\r\n", head, n)
		chunk := fill(make([]byte, 0, 64<<10))
		for sent := 0; sent < n; {
			c := chunk
			if rest := n - sent; rest < len(c) {
				c = c[:rest]
			}
			if _, err := w.Write(c); err != nil {
				return // the server may close once it has answered
			}
			sent += len(c)
			chunk = fill(chunk[:0])
		}
		w.Flush()
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a %d-byte body: %v", n, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("answer to a %d-byte body cut short: %v", n, err)
	}
	a := rawAnswer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &a); err != nil || a.Type == "" {
		t.Fatalf("answer to a %d-byte body is not AWS's JSON error: %d %s %q", n, resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	return a
}

// TestOversizeBodies: a body over the limit gets the same AWS-shaped answer
// at every size, the whole answer arrives before the connection closes
// (no reset), and the server answers the next request.
func TestOversizeBodies(t *testing.T) {
	e := newEnv(t)
	addr := strings.TrimPrefix(e.url, "http://")
	for _, op := range []string{"Encrypt", "CreateKey"} {
		for _, n := range []int{257 << 10, 2 << 20, 64 << 20} {
			t.Run(fmt.Sprintf("%s/%dKiB", op, n>>10), func(t *testing.T) {
				head := "POST / HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: TrentService." + op + "\r\n"
				first := true
				a := exchange(t, addr, head, n, func(b []byte) []byte {
					if first {
						first = false
						b = append(b, `{"Description":"`...)
					}
					for len(b) < cap(b) {
						b = append(b, 'x')
					}
					return b
				})
				if a.status != 413 || a.Type != "RequestEntityTooLarge" || a.Msg == "" {
					t.Fatalf("%d %s", a.status, a.raw)
				}
				if a.header.Get("x-amzn-RequestId") == "" || a.header.Get("Content-Type") != "application/x-amz-json-1.1" {
					t.Fatalf("headers %v", a.header)
				}
				if status, _, _, raw := e.send(t, rawRequest{target: "TrentService.ListKeys", body: "{}"}); status != 200 {
					t.Fatalf("the next request: %d %s", status, raw)
				}
			})
		}
	}
}

// TestDeepJSON: 10,000 levels of nesting are refused, saying so, on the
// fast path (Encrypt, server/wire) and the general one (CreateKey,
// encoding/json), at the same depth, and the server answers the next
// request.
func TestDeepJSON(t *testing.T) {
	e := newEnv(t)
	addr := strings.TrimPrefix(e.url, "http://")
	for _, op := range []string{"Encrypt", "CreateKey"} {
		for _, d := range []int{wire.MaxDepth, wire.MaxDepth + 1, 10000} {
			t.Run(fmt.Sprintf("%s/depth=%d", op, d), func(t *testing.T) {
				// Tags is a list of objects on CreateKey; on Encrypt an
				// unknown member is skipped whatever it holds.
				body := `{"Tags":` + strings.Repeat("[", d-1) + strings.Repeat("]", d-1) + `}`
				req, err := http.NewRequest("POST", e.url+"/", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/x-amz-json-1.1")
				req.Header.Set("X-Amz-Target", "TrentService."+op)
				sum := sha256.Sum256([]byte(body))
				if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: e.creds.AccessKeyID, SecretAccessKey: e.creds.SecretAccessKey},
					req, hex.EncodeToString(sum[:]), "kms", testRegion, time.Now()); err != nil {
					t.Fatal(err)
				}
				var head strings.Builder
				fmt.Fprintf(&head, "POST / HTTP/1.1\r\nHost: %s\r\n", addr)
				for k, vs := range req.Header {
					for _, v := range vs {
						fmt.Fprintf(&head, "%s: %s\r\n", k, v)
					}
				}
				a := exchange(t, addr, head.String(), len(body), func(b []byte) []byte { return append(b, body...) })
				tooDeep := d > wire.MaxDepth
				if got := a.status == 400 && a.Type == "SerializationException" && a.Msg == wire.ErrTooDeep.Msg; got != tooDeep {
					t.Fatalf("depth %d: %d %s", d, a.status, a.raw)
				}
				if !strings.Contains(wire.ErrTooDeep.Msg, "too deep") {
					t.Fatalf("the message does not say the body is too deep: %q", wire.ErrTooDeep.Msg)
				}
				if status, _, _, raw := e.send(t, rawRequest{target: "TrentService.ListKeys", body: "{}"}); status != 200 {
					t.Fatalf("the next request: %d %s", status, raw)
				}
			})
		}
	}
}
