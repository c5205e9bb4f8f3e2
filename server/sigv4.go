package server

import (
	"bytes"
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

// sigRequest is the parsed Authorization header. Its byte slices alias the
// request's memory and are valid only while the handler runs.
type sigRequest struct {
	accessKey, date, region, service []byte
	signedHeaders                    []byte // "a;b;c"
	signature                        [sha256.Size]byte
	amzDate                          time.Time
	amzDateRaw                       []byte
}

// parseAuthorization parses and checks the form of a SigV4 request: the
// header's parts, the credential scope and the clock, into sr (the caller's,
// on its stack). It does not check the signature itself. It allocates only
// to describe a failure.
//
// regionOK says whether the credential scope's Region is one the server
// answers for (one it serves; in --dev, any well-formed Region).
func parseAuthorization(sr *sigRequest, req *fasthttp.Request, regionOK func([]byte) bool, service string, now time.Time) error {
	auth := req.Header.Peek("Authorization")
	if len(auth) == 0 {
		return &authError{"MissingAuthenticationTokenException", "Missing Authentication Token"}
	}
	alg, rest, _ := bytes.Cut(auth, []byte(" "))
	if string(alg) != sigAlgorithm {
		return &authError{"IncompleteSignatureException", fmt.Sprintf("Unsupported AWS 'algorithm': '%s' (only AWS4-HMAC-SHA256 for now). ", truncateHeader(string(alg)))}
	}
	var credential, signature []byte
	for len(rest) > 0 {
		var part []byte
		part, rest, _ = bytes.Cut(rest, []byte(","))
		part = bytes.TrimSpace(part)
		k, v, ok := bytes.Cut(part, []byte("="))
		if !ok {
			return &authError{"IncompleteSignatureException", fmt.Sprintf("'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", truncateHeader(string(part)), truncateHeader(string(auth)))}
		}
		switch string(k) {
		case "Credential":
			credential = v
		case "SignedHeaders":
			sr.signedHeaders = v
		case "Signature":
			signature = v
		}
	}
	dateHeader := req.Header.Peek("X-Amz-Date")
	if len(dateHeader) == 0 {
		dateHeader = req.Header.Peek("Date")
	}
	if len(credential) == 0 || len(signature) == 0 || len(sr.signedHeaders) == 0 || len(dateHeader) == 0 {
		var missing []string
		if len(credential) == 0 {
			missing = append(missing, "Authorization header requires 'Credential' parameter.")
		}
		if len(signature) == 0 {
			missing = append(missing, "Authorization header requires 'Signature' parameter.")
		}
		if len(sr.signedHeaders) == 0 {
			missing = append(missing, "Authorization header requires 'SignedHeaders' parameter.")
		}
		if len(dateHeader) == 0 {
			missing = append(missing, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
		}
		return &authError{"IncompleteSignatureException", strings.Join(missing, " ") + " Authorization=" + truncateHeader(string(auth))}
	}
	var scope [5][]byte
	n, c := 0, credential
	for n < 5 {
		i := bytes.IndexByte(c, '/')
		if i < 0 {
			scope[n] = c
			n++
			c = nil
			break
		}
		scope[n], c = c[:i], c[i+1:]
		n++
	}
	if n != 5 || c != nil || len(scope[0]) == 0 {
		return &authError{"IncompleteSignatureException", fmt.Sprintf("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", truncateHeader(string(credential)))}
	}
	sr.accessKey, sr.date, sr.region, sr.service = scope[0], scope[1], scope[2], scope[3]
	if string(scope[4]) != sigTerminator {
		return &authError{"InvalidSignatureException", fmt.Sprintf("Credential should be scoped with a valid terminator: 'aws4_request', not '%s'.", truncateHeader(string(scope[4])))}
	}
	t, ok := parseAmzDate(dateHeader)
	if !ok {
		var err error
		if t, err = time.Parse(time.RFC1123, string(dateHeader)); err != nil {
			return &authError{"IncompleteSignatureException", fmt.Sprintf("Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", truncateHeader(string(dateHeader)))}
		}
		t = t.UTC()
	}
	sr.amzDate, sr.amzDateRaw = t, dateHeader
	var day [8]byte
	scopeDay(&day, t)
	if !bytes.Equal(sr.date, day[:]) {
		return &authError{"InvalidSignatureException", fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", truncateHeader(string(sr.date)), string(day[:]), truncateHeader(string(dateHeader)))}
	}
	if !regionOK(sr.region) {
		return &authError{"InvalidSignatureException", fmt.Sprintf("Credential should be scoped to a valid region, not '%s'. ", truncateHeader(string(sr.region)))}
	}
	if string(sr.service) != service {
		return &authError{"InvalidSignatureException", fmt.Sprintf("Credential should be scoped to correct service: '%s'. ", service)}
	}
	now = now.UTC()
	if t.Before(now.Add(-maxClockSkew)) {
		return &authError{"InvalidSignatureException", fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 15 min.)",
			t.Format(amzDateLayout), now.Add(-maxClockSkew).Format(amzDateLayout), now.Format(amzDateLayout))}
	}
	if t.After(now.Add(maxClockSkew)) {
		return &authError{"InvalidSignatureException", fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 15 min.)",
			t.Format(amzDateLayout), now.Add(maxClockSkew).Format(amzDateLayout), now.Format(amzDateLayout))}
	}
	// What a signature covers must include what picks the operation and
	// when it was made: unsigned, a captured request could be replayed as
	// another operation (X-Amz-Target) with the same body. Every AWS SDK
	// signs these; Content-Type is not among them (the JavaScript SDK v2
	// never signs it), and Coffer does not let it change a request's meaning.
	if !signsHeader(sr.signedHeaders, "host") {
		return &authError{"InvalidSignatureException", "'Host' must be a 'SignedHeader' in the AWS Authorization."}
	}
	if len(req.Header.Peek("X-Amz-Date")) > 0 {
		if !signsHeader(sr.signedHeaders, "x-amz-date") {
			return &authError{"InvalidSignatureException", "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."}
		}
	} else if !signsHeader(sr.signedHeaders, "date") {
		return &authError{"InvalidSignatureException", "'Date' must be a 'SignedHeader' in the AWS Authorization."}
	}
	if service == sigService && !signsHeader(sr.signedHeaders, "x-amz-target") {
		return &authError{"InvalidSignatureException", "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."}
	}
	if len(signature) != 2*sha256.Size {
		return signatureMismatch
	}
	if _, err := hex.Decode(sr.signature[:], signature); err != nil {
		return signatureMismatch
	}
	return nil
}

// signsHeader reports whether the SignedHeaders list names name (lower case).
func signsHeader(signed []byte, name string) bool {
	for len(signed) > 0 {
		var h []byte
		h, signed, _ = bytes.Cut(signed, []byte(";"))
		if string(h) == name {
			return true
		}
	}
	return false
}

// scopeDay writes t's date as YYYYMMDD, the credential scope's form,
// without time.AppendFormat's layout walk (through which a buffer on the
// stack escapes). Both date forms parseAuthorization accepts have a
// four-digit year.
func scopeDay(day *[8]byte, t time.Time) {
	y, m, d := t.Date()
	*day = [8]byte{byte('0' + y/1000%10), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10),
		byte('0' + int(m)/10), byte('0' + int(m)%10), byte('0' + d/10), byte('0' + d%10)}
}

// parseAmzDate parses the basic ISO 8601 form SigV4 uses,
// YYYYMMDDTHHMMSSZ, without time.Parse's generality.
func parseAmzDate(b []byte) (time.Time, bool) {
	if len(b) != 16 || b[8] != 'T' || b[15] != 'Z' {
		return time.Time{}, false
	}
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(b[0:4])
	mo, ok2 := num(b[4:6])
	d, ok3 := num(b[6:8])
	h, ok4 := num(b[9:11])
	mi, ok5 := num(b[11:13])
	sec, ok6 := num(b[13:15])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC)
	if t.Day() != d { // 31 February and the like
		return time.Time{}, false
	}
	return t, true
}

var signatureMismatch = &authError{"InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}

// unknownAccessKey answers an access key Coffer does not know, and, as AWS
// does, temporary credentials whose session token is wrong or missing.
var unknownAccessKey = &authError{"UnrecognizedClientException", "The security token included in the request is invalid."}

// expiredToken answers temporary credentials whose time is up.
var expiredToken = &authError{"ExpiredTokenException", "The security token included in the request is expired"}

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
	sum     [sha256.Size]byte // hash.Hash's Sum takes it through an interface: on the stack it would escape
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
	cr = appendCanonicalHeaders(cr, req, sr.signedHeaders)
	cr = append(cr, '\n')
	cr = append(cr, sr.signedHeaders...)
	cr = append(cr, '\n')
	sc.sha.Reset()
	sc.sha.Write(req.Body())
	cr = hex.AppendEncode(cr, sc.sha.Sum(sc.sum[:0]))
	sc.sha.Reset()
	sc.sha.Write(cr)
	crSum := sc.sha.Sum(sc.sum[:0])
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

// Bounds of appendCanonicalHeaders' one pass, on its stack; a request past
// them (no SDK's is) takes one lookup per signed header.
const (
	maxOnePassSigned = 16 // signed headers
	maxOnePassValues = 32 // values of the signed headers fasthttp keeps in its generic list
)

// appendCanonicalHeaders appends the canonical headers of req, each
// "name:values\n", for the signed headers (the "a;b;c" list, in its order).
// The headers fasthttp keeps in its generic list are found in one pass over
// it, not one lookup (a pass of its own) per signed header; the others,
// which fasthttp keeps apart, by appendCanonicalHeaderValue.
func appendCanonicalHeaders(dst []byte, req *fasthttp.Request, signed []byte) []byte {
	var names [maxOnePassSigned][]byte
	n := 0
	for rest := signed; len(rest) > 0; n++ {
		if n == len(names) {
			return appendCanonicalHeadersEach(dst, req, signed)
		}
		names[n], rest, _ = bytes.Cut(rest, []byte(";"))
	}
	var generic uint32 // bit i: names[i] is looked for in the pass
	for i, h := range names[:n] {
		if !specialHeader(h) {
			generic |= 1 << i
		}
	}
	// values[j] belongs to names[of[j]], in the order of the request's
	// header lines, as PeekAll would list them.
	var (
		values [maxOnePassValues][]byte
		of     [maxOnePassValues]uint8
		m      int
	)
	if generic != 0 {
		for k, v := range req.Header.All() {
			for i, h := range names[:n] {
				if generic&(1<<i) == 0 || !equalLower(k, h) {
					continue
				}
				if m == len(values) {
					return appendCanonicalHeadersEach(dst, req, signed)
				}
				values[m], of[m] = v, uint8(i)
				m++
			}
		}
	}
	for i, h := range names[:n] {
		dst = append(dst, h...)
		dst = append(dst, ':')
		if generic&(1<<i) == 0 {
			dst = appendCanonicalHeaderValue(dst, req, h)
		} else {
			first := true
			for j, v := range values[:m] {
				if int(of[j]) != i {
					continue
				}
				if !first {
					dst = append(dst, ',')
				}
				first = false
				dst = appendTrimmed(dst, v)
			}
		}
		dst = append(dst, '\n')
	}
	return dst
}

// appendCanonicalHeadersEach is appendCanonicalHeaders with one lookup per
// signed header.
func appendCanonicalHeadersEach(dst []byte, req *fasthttp.Request, signed []byte) []byte {
	for rest := signed; len(rest) > 0; {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte(";"))
		dst = append(dst, h...)
		dst = append(dst, ':')
		dst = appendCanonicalHeaderValue(dst, req, h)
		dst = append(dst, '\n')
	}
	return dst
}

// specialHeader reports whether fasthttp keeps header name (lower case)
// out of its generic list: appendCanonicalHeaderValue has a case for each.
func specialHeader(name []byte) bool {
	switch string(name) {
	case "host", "content-length", "content-type", "user-agent", "cookie", "connection", "transfer-encoding":
		return true
	}
	return false
}

// equalLower reports whether header name k, in any case, is h, in any
// case (SignedHeaders is lower case; PeekAll matches either way).
func equalLower(k, h []byte) bool {
	if len(k) != len(h) {
		return false
	}
	for i := range k {
		a, b := k[i], h[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// appendCanonicalHeaderValue appends the values of header name, trimmed,
// inner runs of spaces collapsed, several values joined by commas.
func appendCanonicalHeaderValue(dst []byte, req *fasthttp.Request, nameBytes []byte) []byte {
	switch name := string(nameBytes); name {
	case "host":
		return appendTrimmed(dst, req.Header.Host())
	case "content-length":
		// fasthttp keeps these out of its generic header list.
		return strconv.AppendInt(dst, int64(len(req.Body())), 10)
	case "content-type", "user-agent", "cookie", "connection", "transfer-encoding":
		return appendTrimmed(dst, req.Header.Peek(name))
	}
	first := true
	for _, v := range req.Header.PeekAll(string(nameBytes)) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendTrimmed(dst, v)
	}
	return dst
}

func appendTrimmed(dst, v []byte) []byte {
	if plainValue(v) {
		return append(dst, v...)
	}
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

// plainValue reports whether appendTrimmed would copy v as it is: no tab,
// no space at either end, no two spaces in a row (an SDK's values, most
// often).
func plainValue(v []byte) bool {
	if len(v) > 0 && (v[0] == ' ' || v[len(v)-1] == ' ') {
		return false
	}
	for i, c := range v {
		if c == '\t' || c == ' ' && v[i-1] == ' ' {
			return false
		}
	}
	return true
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
	date, region, service := sr.date, sr.region, sr.service
	c.mu.RLock()
	k, ok := c.m[string(id)]
	c.mu.RUnlock()
	if ok {
		return k
	}
	seed := append([]byte("AWS4"), secret...)
	raw := hmacSHA256(seed, date)
	clear(seed)
	raw = hmacSHA256(raw, region)
	raw = hmacSHA256(raw, service)
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

// verify checks sr's signature over req with secret, and clears secret:
// it is the request's own copy (kms.Service.AccessKey and
// SessionCredentials return copies), not needed once the signing key is
// derived or found.
func (c *signingKeys) verify(req *fasthttp.Request, sr *sigRequest, secret []byte) bool {
	sc := scratchPool.Get().(*sigScratch)
	defer scratchPool.Put(sc)
	id := append(sc.sts[:0], sr.accessKey...)
	for _, p := range [...][]byte{sr.date, sr.region, sr.service} {
		id = append(id, '/')
		id = append(id, p...)
	}
	k := c.get(secret, sr, id)
	clear(secret)
	sts := appendStringToSign(id[:0], sc, req, sr)
	sc.sts = sts
	mac := k.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(sts)
	ok := hmac.Equal(mac.Sum(sc.sum[:0]), sr.signature[:])
	k.macs.Put(mac)
	return ok
}
