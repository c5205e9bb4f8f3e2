package server_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// TestUnparsableRequestLogsNoSecrets: fasthttp quotes a request it cannot
// parse in its debug message; the session token, the signature and cookies
// must not reach the log with it.
func TestUnparsableRequestLogsNoSecrets(t *testing.T) {
	e := newEnv(t) // logs at debug level
	const (
		token     = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN+/="
		signature = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		cookie    = "SECRETCOOKIE"
		basic     = "QWxhZGRpbjpvcGVuIHNlc2FtZQ"
	)
	auth := "Authorization: AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + signature + "\r\n"
	for _, raw := range []string{
		"POST / HTTP/1.1\r\nHost: x\r\n" + auth + "X-Amz-Security-Token: " + token + "\r\nCookie: s=" + cookie + "; t=2\r\nContent-Length: abc\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\n" + auth + "x-amz-security-token:" + token + "\r\nBad Header\r\n\r\n",
		"GARBAGE\x00 /?X-Amz-Signature=" + signature + "&X-Amz-Security-Token=" + token + " HTTP/1.1\r\nAuthorization: Basic " + basic + "\r\n\r\n",
	} {
		c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(raw))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		status, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.HasPrefix(status, "HTTP/1.1 400") {
			t.Fatalf("unparsable request answered %q", status)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for strings.Count(e.logs.String(), "error when serving connection") < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	logs := e.logs.String()
	if n := strings.Count(logs, "error when serving connection"); n < 3 {
		t.Fatalf("%d of 3 unparsable requests logged:\n%s", n, logs)
	}
	for _, secret := range []string{token, signature, cookie, basic} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the log holds %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, "REDACTED") || !strings.Contains(logs, "AKIAEXAMPLE") {
		t.Fatalf("the log should show where secrets were cut, and keep the access key ID:\n%s", logs)
	}
}
