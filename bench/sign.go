package bench

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/valyala/fasthttp"
)

// signer signs requests with SigV4 for the kms service, caching the
// derived key per day so that the generator's own cost stays small.
type signer struct {
	id, secret, region string
	day                string
	key                []byte
}

func hmacSum(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// sign sets X-Amz-Date and Authorization on req (host, content-type,
// x-amz-date and x-amz-target signed).
func (s *signer) sign(req *fasthttp.Request, now time.Time) {
	amzDate := now.UTC().Format("20060102T150405Z")
	day := amzDate[:8]
	if day != s.day {
		k := hmacSum([]byte("AWS4"+s.secret), day)
		k = hmacSum(k, s.region)
		k = hmacSum(k, "kms")
		s.key, s.day = hmacSum(k, "aws4_request"), day
	}
	req.Header.Set("X-Amz-Date", amzDate)
	bodySum := sha256.Sum256(req.Body())
	canonical := "POST\n/\n\n" +
		"content-type:" + string(req.Header.ContentType()) + "\n" +
		"host:" + string(req.Header.Host()) + "\n" +
		"x-amz-date:" + amzDate + "\n" +
		"x-amz-target:" + string(req.Header.Peek("X-Amz-Target")) + "\n\n" +
		"content-type;host;x-amz-date;x-amz-target\n" + hex.EncodeToString(bodySum[:])
	crSum := sha256.Sum256([]byte(canonical))
	scope := day + "/" + s.region + "/kms/aws4_request"
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(crSum[:])
	sig := hex.EncodeToString(hmacSum(s.key, sts))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+s.id+"/"+scope+
		", SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="+sig)
}
