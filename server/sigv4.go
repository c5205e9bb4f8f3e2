package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// SigV4 constants.
const (
	sigAlgorithm  = "AWS4-HMAC-SHA256"
	sigService    = "kms"
	sigTerminator = "aws4_request"
	amzDateLayout = "20060102T150405Z"
	maxClockSkew  = 15 * time.Minute
)

// authError is a SigV4 failure with AWS's code and message.
type authError struct {
	code, message string
}

func (e *authError) Error() string { return e.code + ": " + e.message }

// sigRequest is the parsed Authorization header.
type sigRequest struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        []byte
	amzDate                          time.Time
	amzDateRaw                       string
}

// parseAuthorization parses and checks the form of a SigV4 request: the
// header's parts, the credential scope and the clock. It does not check the
// signature itself.
func parseAuthorization(req *fasthttp.Request, region string, now time.Time) (*sigRequest, error) {
	auth := string(req.Header.Peek("Authorization"))
	if auth == "" {
		return nil, &authError{"MissingAuthenticationTokenException", "Missing Authentication Token"}
	}
	alg, rest, _ := strings.Cut(auth, " ")
	if alg != sigAlgorithm {
		return nil, &authError{"IncompleteSignatureException", fmt.Sprintf("Unsupported AWS 'algorithm': '%s'", truncateHeader(alg))}
	}
	var sr sigRequest
	var credential, signedHeaders, signature string
	var missing []string
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, &authError{"IncompleteSignatureException", fmt.Sprintf("'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", truncateHeader(strings.TrimSpace(part)), truncateHeader(auth))}
		}
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			signedHeaders = v
		case "Signature":
			signature = v
		}
	}
	if credential == "" {
		missing = append(missing, "Authorization header requires 'Credential' parameter.")
	}
	if signature == "" {
		missing = append(missing, "Authorization header requires 'Signature' parameter.")
	}
	if signedHeaders == "" {
		missing = append(missing, "Authorization header requires 'SignedHeaders' parameter.")
	}
	dateHeader := string(req.Header.Peek("X-Amz-Date"))
	if dateHeader == "" {
		dateHeader = string(req.Header.Peek("Date"))
	}
	if dateHeader == "" {
		missing = append(missing, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if len(missing) > 0 {
		return nil, &authError{"IncompleteSignatureException", strings.Join(missing, " ") + " Authorization=" + truncateHeader(auth)}
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[0] == "" {
		return nil, &authError{"IncompleteSignatureException", fmt.Sprintf("Credential should have exactly 5 slash-delimited elements, e.g. keyID/date/region/service/term, got '%s'", truncateHeader(credential))}
	}
	sr.accessKey, sr.date, sr.region, sr.service = scope[0], scope[1], scope[2], scope[3]
	if scope[4] != sigTerminator {
		return nil, &authError{"InvalidSignatureException", fmt.Sprintf("Credential should be scoped with a valid terminator: 'aws4_request', not '%s'.", truncateHeader(scope[4]))}
	}
	t, err := time.Parse(amzDateLayout, dateHeader)
	if err != nil {
		t, err = time.Parse(time.RFC1123, dateHeader)
		if err != nil {
			return nil, &authError{"IncompleteSignatureException", fmt.Sprintf("Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", truncateHeader(dateHeader))}
		}
	}
	sr.amzDate, sr.amzDateRaw = t.UTC(), dateHeader
	if sr.date != sr.amzDate.Format("20060102") {
		return nil, &authError{"InvalidSignatureException", fmt.Sprintf("Credential should be scoped to a valid date: '%s', not '%s'.", sr.amzDate.Format("20060102"), truncateHeader(sr.date))}
	}
	if sr.region != region {
		return nil, &authError{"InvalidSignatureException", fmt.Sprintf("Credential should be scoped to a valid region, not '%s'. ", truncateHeader(sr.region))}
	}
	if sr.service != sigService {
		return nil, &authError{"InvalidSignatureException", fmt.Sprintf("Credential should be scoped to correct service: '%s'. ", sigService)}
	}
	now = now.UTC()
	if sr.amzDate.Before(now.Add(-maxClockSkew)) {
		return nil, &authError{"InvalidSignatureException", fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 15 min.)",
			sr.amzDate.Format(amzDateLayout), now.Add(-maxClockSkew).Format(amzDateLayout), now.Format(amzDateLayout))}
	}
	if sr.amzDate.After(now.Add(maxClockSkew)) {
		return nil, &authError{"InvalidSignatureException", fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 15 min.)",
			sr.amzDate.Format(amzDateLayout), now.Add(maxClockSkew).Format(amzDateLayout), now.Format(amzDateLayout))}
	}
	sr.signedHeaders = strings.Split(signedHeaders, ";")
	if !slices.Contains(sr.signedHeaders, "host") {
		return nil, &authError{"InvalidSignatureException", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."}
	}
	sig, err := hex.DecodeString(signature)
	if err != nil || len(sig) != sha256.Size {
		return nil, signatureMismatch
	}
	sr.signature = sig
	return &sr, nil
}

var signatureMismatch = &authError{"InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}

var unknownAccessKey = &authError{"UnrecognizedClientException", "The security token included in the request is invalid."}

func truncateHeader(s string) string {
	if len(s) > 512 {
		return s[:512]
	}
	return s
}

// sigScratch is the per-request working memory of verification.
type sigScratch struct {
	cr, sts []byte
	sha     hash.Hash
}

var scratchPool = sync.Pool{New: func() any {
	return &sigScratch{cr: make([]byte, 0, 1024), sts: make([]byte, 0, 256), sha: sha256.New()}
}}

// appendStringToSign appends the SigV4 string to sign for req to dst.
func appendStringToSign(dst []byte, sc *sigScratch, req *fasthttp.Request, sr *sigRequest) []byte {
	cr := sc.cr[:0]
	cr = append(cr, req.Header.Method()...)
	cr = append(cr, '\n')
	if path := req.URI().PathOriginal(); len(path) == 0 || string(path) == "/" {
		cr = append(cr, '/')
	} else {
		cr = append(cr, canonicalURI(path)...)
	}
	cr = append(cr, '\n')
	if q := req.URI().QueryString(); len(q) > 0 {
		cr = append(cr, canonicalQuery(q)...)
	}
	cr = append(cr, '\n')
	for _, h := range sr.signedHeaders {
		cr = append(cr, h...)
		cr = append(cr, ':')
		cr = appendCanonicalHeaderValue(cr, req, h)
		cr = append(cr, '\n')
	}
	cr = append(cr, '\n')
	for i, h := range sr.signedHeaders {
		if i > 0 {
			cr = append(cr, ';')
		}
		cr = append(cr, h...)
	}
	cr = append(cr, '\n')
	var sum [sha256.Size]byte
	sc.sha.Reset()
	sc.sha.Write(req.Body())
	cr = hex.AppendEncode(cr, sc.sha.Sum(sum[:0]))
	sc.sha.Reset()
	sc.sha.Write(cr)
	crSum := sc.sha.Sum(sum[:0])
	sc.cr = cr

	dst = append(dst, sigAlgorithm+"\n"...)
	dst = append(dst, sr.amzDateRaw...)
	dst = append(dst, '\n')
	dst = append(dst, sr.date...)
	dst = append(dst, '/')
	dst = append(dst, sr.region...)
	dst = append(dst, '/')
	dst = append(dst, sr.service...)
	dst = append(dst, "/"+sigTerminator+"\n"...)
	return hex.AppendEncode(dst, crSum)
}

// appendCanonicalHeaderValue appends the values of header name, trimmed,
// inner runs of spaces collapsed, several values joined by commas.
func appendCanonicalHeaderValue(dst []byte, req *fasthttp.Request, name string) []byte {
	switch name {
	case "host":
		return appendTrimmed(dst, req.Header.Host())
	case "content-length":
		// fasthttp keeps these out of its generic header list.
		return strconv.AppendInt(dst, int64(len(req.Body())), 10)
	case "content-type", "user-agent", "cookie", "connection", "transfer-encoding":
		return appendTrimmed(dst, req.Header.Peek(name))
	}
	first := true
	for _, v := range req.Header.PeekAll(name) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendTrimmed(dst, v)
	}
	return dst
}

func appendTrimmed(dst, v []byte) []byte {
	space := false
	wrote := false
	for _, c := range v {
		if c == ' ' || c == '\t' {
			space = true
			continue
		}
		if space && wrote {
			dst = append(dst, ' ')
		}
		space = false
		wrote = true
		dst = append(dst, c)
	}
	return dst
}

// canonicalURI encodes each path segment (non-S3 services encode the path
// as sent once more).
func canonicalURI(path []byte) string {
	if len(path) == 0 {
		return "/"
	}
	segs := strings.Split(string(path), "/")
	for i, s := range segs {
		segs[i] = awsEscape(s)
	}
	return strings.Join(segs, "/")
}

func canonicalQuery(q []byte) string {
	if len(q) == 0 {
		return ""
	}
	vals, err := url.ParseQuery(string(q))
	if err != nil {
		return string(q)
	}
	var pairs []string
	for k, vs := range vals {
		for _, v := range vs {
			pairs = append(pairs, awsEscape(k)+"="+awsEscape(v))
		}
	}
	slices.Sort(pairs)
	return strings.Join(pairs, "&")
}

// awsEscape is RFC 3986 percent-encoding of everything but unreserved characters.
func awsEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// signingKeys caches derived SigV4 signing keys per access key, day and
// region, each with a pool of ready HMAC states, so that a request costs one
// HMAC and no key derivation.
type signingKeys struct {
	mu sync.RWMutex
	m  map[string]*signingKey
}

type signingKey struct {
	key  []byte
	macs sync.Pool // hash.Hash keyed with key
}

const maxSigningKeys = 4096

func (c *signingKeys) get(secret []byte, sr *sigRequest, id []byte) *signingKey {
	c.mu.RLock()
	k, ok := c.m[string(id)]
	c.mu.RUnlock()
	if ok {
		return k
	}
	raw := hmacSHA256(append([]byte("AWS4"), secret...), []byte(sr.date))
	raw = hmacSHA256(raw, []byte(sr.region))
	raw = hmacSHA256(raw, []byte(sr.service))
	raw = hmacSHA256(raw, []byte(sigTerminator))
	k = &signingKey{key: raw}
	k.macs.New = func() any { return hmac.New(sha256.New, raw) }
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxSigningKeys {
		c.m = map[string]*signingKey{}
	}
	c.m[string(id)] = k
	c.mu.Unlock()
	return k
}

// forget drops every cached key derived from an access key.
func (c *signingKeys) forget(accessKey string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.m {
		if strings.HasPrefix(id, accessKey+"/") {
			delete(c.m, id)
		}
	}
}

func hmacSHA256(key, data []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(data)
	return h.Sum(nil)
}

// verify checks sr's signature over req with secret.
func (c *signingKeys) verify(req *fasthttp.Request, sr *sigRequest, secret []byte) bool {
	sc := scratchPool.Get().(*sigScratch)
	defer scratchPool.Put(sc)
	id := append(sc.sts[:0], sr.accessKey...)
	for _, p := range [...]string{sr.date, sr.region, sr.service} {
		id = append(id, '/')
		id = append(id, p...)
	}
	k := c.get(secret, sr, id)
	sts := appendStringToSign(id[:0], sc, req, sr)
	sc.sts = sts
	mac := k.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(sts)
	var sum [sha256.Size]byte
	ok := hmac.Equal(mac.Sum(sum[:0]), sr.signature)
	k.macs.Put(mac)
	return ok
}
