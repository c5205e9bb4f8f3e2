package server_test

import (
	"strings"
	"testing"
)

// TestDevAnyRegion: --dev answers a request scoped to any well-formed
// Region; ARNs keep naming the Region the server was started with. Without
// --dev only that Region is accepted (TestBadRequests).
func TestDevAnyRegion(t *testing.T) {
	e := newEnv(t)
	e.stop()
	e.startWith(true)
	for _, region := range []string{testRegion, "eu-west-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1"} {
		status, code, _, raw := e.send(t, rawRequest{target: "TrentService.CreateKey", body: "{}", region: region, id: "AKIADEVDEVDEVDEVDEV1", secret: "x"})
		if status != 200 || !strings.Contains(raw, `"Arn":"arn:aws:kms:`+testRegion+`:`) {
			t.Fatalf("dev, scope %s: %d %s %s", region, status, code, raw)
		}
	}
	for _, region := range []string{"EU-WEST-1", "eu_west_1", "-eu-west-1", "euwest1", "eu--west-1", "eu-west-1-"} {
		status, code, _, _ := e.send(t, rawRequest{target: "TrentService.ListKeys", body: "{}", region: region})
		if status != 400 || code != "InvalidSignatureException" {
			t.Fatalf("dev, malformed Region %q: %d %s", region, status, code)
		}
	}
}
