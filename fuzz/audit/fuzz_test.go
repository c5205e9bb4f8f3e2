// Package audit fuzzes the audit trail's readers: Verify, recovery (Open)
// and Query over arbitrary file contents never panic and keep their
// promises, and a record's encoding always round-trips through
// encoding/json.
package audit

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/audit"
)

// fuzzKey is fixed so that the committed seeds carry valid signatures.
func fuzzKey(t testing.TB) *ecdsa.PrivateKey {
	d := sha256.Sum256([]byte("coffer audit fuzz signing key"))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const (
	file1 = "audit-20261123T011400Z-000001.jsonl"
	file2 = "audit-20261123T021400Z-000002.jsonl"
)

// FuzzVerify writes data as a trail of two files, split at split, and checks:
//   - Verify returns an error or a report, never panics; a report names a
//     bad record exactly when the error says the chain is broken;
//   - a trail that verifies has sequence numbers 1..LastSeq, one per
//     complete line, each line a record;
//   - a Writer opened on a trail that verifies continues it: after one more
//     record and Close, the trail verifies, fully sealed;
//   - Query reads anything without error.
func FuzzVerify(f *testing.F) {
	key := fuzzKey(f)
	for _, seed := range genuineTrails(f, key) {
		f.Add(seed, uint16(len(seed)/2))
	}
	f.Add([]byte("{}\n"), uint16(0))
	f.Add([]byte(`{"seq":1,"prevHash":""}`+"\n"), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		dir := t.TempDir()
		at := 0
		if len(data) > 0 {
			at = int(split) % (len(data) + 1)
		}
		os.WriteFile(filepath.Join(dir, file1), data[:at], 0o600)
		os.WriteFile(filepath.Join(dir, file2), data[at:], 0o600)

		rep, err := audit.Verify(dir, &key.PublicKey)
		if err := audit.Query(dir, audit.Filter{KeyID: "k", EventName: "Encrypt"}, func(*audit.Record) error { return nil }); err != nil {
			t.Fatalf("query: %v", err)
		}
		if err != nil {
			if !errors.Is(err, audit.ErrBroken) || rep == nil || rep.Bad == nil || rep.Bad.Line < 1 {
				t.Fatalf("error %v with report %+v", err, rep)
			}
			return
		}
		if rep.Bad != nil {
			t.Fatalf("a bad record without an error: %+v", rep.Bad)
		}
		complete := data[:bytes.LastIndexByte(data, '\n')+1]
		lines := bytes.Count(complete, []byte("\n"))
		if rep.Records != lines || rep.LastSeq != uint64(lines) || rep.Unsealed > rep.Records || rep.Digests > rep.Records {
			t.Fatalf("report %+v for %d complete lines", rep, lines)
		}
		for l := range bytes.Lines(complete) {
			var r audit.Record
			if err := json.Unmarshal(l, &r); err != nil {
				t.Fatalf("verified a line that is not a record: %q", l)
			}
		}

		w, err := audit.Open(audit.Config{Dir: dir, Signer: key})
		if err != nil {
			t.Fatalf("open on a trail that verifies: %v", err)
		}
		if err := w.Append(context.Background(), &audit.Record{EventName: "Encrypt"}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		after, err := audit.Verify(dir, &key.PublicKey)
		if err != nil || after.Unsealed != 0 || after.LastSeq != rep.LastSeq+2 {
			t.Fatalf("after one more record: %v %+v (before %+v)", err, after, rep)
		}
	})
}

// genuineTrails are real trails signed with key, whole and damaged.
func genuineTrails(t testing.TB, key *ecdsa.PrivateKey) [][]byte {
	dir := t.TempDir()
	w, err := audit.Open(audit.Config{Dir: dir, Signer: key, DigestEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		r := &audit.Record{EventName: "Encrypt", EventTime: "2026-11-23T01:14:00Z", RequestID: fmt.Sprint(i),
			Resources:         []audit.Resource{{ARN: "arn:aws:kms:us-east-1:111122223333:key/k", Type: audit.ResourceTypeKey}},
			RequestParameters: []byte(`{"keyId":"k"}`)}
		if err := w.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	names, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	whole, err := os.ReadFile(names[0])
	if err != nil {
		t.Fatal(err)
	}
	l := bytes.SplitAfter(whole, []byte("\n"))
	return [][]byte{
		whole,
		append(bytes.Clone(whole), `{"eventVersion":"1.`...),                          // torn tail
		bytes.Join(l[:4], nil),                                                        // unsealed tail
		bytes.Join(append(append([][]byte{}, l[:1]...), l[2:]...), nil),               // a record deleted
		bytes.Replace(whole, []byte(`"requestID":"1"`), []byte(`"requestID":"2"`), 1), // an edit
	}
}

// FuzzAnchor writes data as the anchor file of a genuine trail and checks:
//   - ReadAnchor never panics; an anchor it returns is signed by the key
//     over its seq, head and time, as DESIGN.md's "Anchor" gives the
//     message (checked here from scratch), its head in small letters;
//   - Verify agrees: an anchor ReadAnchor refuses breaks the trail;
//   - Open either continues the trail (and then leaves an anchor file of
//     two slots whose anchor is the new head) or refuses it.
func FuzzAnchor(f *testing.F) {
	key := fuzzKey(f)
	trailFile, anchors := genuineAnchors(f, key)
	for _, a := range anchors {
		f.Add(a)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, file1), trailFile, 0o600)
		os.WriteFile(audit.AnchorPath(dir), data, 0o600)
		a, err := audit.ReadAnchor(dir, &key.PublicKey)
		if err == nil && a == nil {
			t.Fatal("no anchor and no error for a file that exists")
		}
		if a != nil {
			if !signedAnchor(&key.PublicKey, a) {
				t.Fatalf("accepted an anchor its signature does not cover: %+v", a)
			}
			if a.HeadHash != strings.ToLower(a.HeadHash) {
				t.Fatalf("an anchor's head not as the Writer spells it: %+v", a)
			}
		}
		_, verr := audit.Verify(dir, &key.PublicKey)
		if err != nil && !errors.Is(verr, audit.ErrBroken) {
			t.Fatalf("ReadAnchor: %v, but Verify: %v", err, verr)
		}
		w, oerr := audit.Open(audit.Config{Dir: dir, Signer: key})
		if oerr != nil {
			if err == nil && a.Seq <= 6 && !errors.Is(oerr, audit.ErrGap) {
				t.Fatalf("open with an anchor the trail reaches (%d): %v", a.Seq, oerr)
			}
			return
		}
		if err != nil {
			t.Fatalf("opened with an anchor ReadAnchor refuses: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Verify(dir, &key.PublicKey)
		if err != nil || rep.Anchor == nil || rep.Anchor.Seq != rep.LastSeq || rep.Anchor.Damaged != "" {
			t.Fatalf("after Open and Close: %v, %+v", err, rep)
		}
	})
}

// signedAnchor checks a's signature from the format in DESIGN.md.
func signedAnchor(pub *ecdsa.PublicKey, a *audit.Anchor) bool {
	var head [32]byte
	if a.HeadHash != "" {
		h, err := hex.DecodeString(a.HeadHash)
		if err != nil || len(h) != 32 {
			return false
		}
		copy(head[:], h)
	}
	msg := []byte("coffer/audit-anchor/v1\n")
	msg = binary.BigEndian.AppendUint64(msg, a.Seq)
	msg = append(msg, head[:]...)
	msg = append(msg, a.Time...)
	sum := sha256.Sum256(msg)
	return ecdsa.VerifyASN1(pub, sum[:], a.Signature)
}

// genuineAnchors makes a trail of four records with key and returns its
// file and anchor files for it: the Writer's (two slots in use), each
// slot torn, one of one line (from before slots), and one past the end.
func genuineAnchors(t testing.TB, key *ecdsa.PrivateKey) (trailFile []byte, anchors [][]byte) {
	dir := t.TempDir()
	w, err := audit.Open(audit.Config{Dir: dir, Signer: key, DigestEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := w.Append(context.Background(), &audit.Record{EventName: "Encrypt", RequestID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close() // seq 1..6: the digests at 3 and 6; the anchor at 6, the slot before at 3
	names, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	if trailFile, err = os.ReadFile(names[0]); err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(audit.AnchorPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	const slot = 4096
	tornNewer := bytes.Clone(whole)
	copy(tornNewer[10:], "0000000000")
	tornOlder := bytes.Clone(whole)
	copy(tornOlder[slot+10:], "0000000000")
	a, err := audit.ReadAnchor(dir, &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	oneLine, _ := json.Marshal(a)
	past := bytes.Replace(oneLine, []byte(fmt.Sprintf(`"seq":%d`, a.Seq)), []byte(`"seq":99`), 1)
	return trailFile, [][]byte{whole, tornNewer, tornOlder, append(oneLine, '\n'), append(past, '\n'), nil}
}

// FuzzRecordRoundTrip checks that AppendJSON writes one line of JSON that
// decodes, as encoding/json's own output does, to the record; and that it
// refuses exactly the request parameters that are not JSON.
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add("Encrypt", "aws-cli/2 \"quoted\" \\ \n", "arn:aws:iam::1:user/\u2028", []byte(`{"keyId":"k"}`), uint64(1))
	f.Add("\xff\xfe", "\x00\x1f<>&", "résumé", []byte("{\n\"a\": [1, 2.5e3, null, true]\n}"), uint64(1)<<63)
	f.Add("", "", "", []byte(`{"a":`), uint64(0))
	f.Fuzz(func(t *testing.T, name, agent, arn string, params []byte, seq uint64) {
		r := &audit.Record{EventName: name, UserAgent: agent, ErrorMessage: agent,
			UserIdentity: audit.UserIdentity{Type: "IAMUser", ARN: arn}, Resources: []audit.Resource{{ARN: arn, Type: name}},
			RequestParameters: params, Seq: seq, PrevHash: name}
		line, err := r.AppendJSON(nil)
		if valid := len(params) == 0 || json.Valid(params); (err == nil) != valid {
			t.Fatalf("params %q: valid %v, error %v", params, valid, err)
		}
		if err != nil {
			return
		}
		if !json.Valid(line) || bytes.ContainsAny(line, "\n\r") {
			t.Fatalf("not one line of JSON: %q", line)
		}
		var got, want audit.Record
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatal(err)
		}
		std, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(std, &want)
		// encoding/json escapes <, > and & inside raw values; AppendJSON
		// keeps them: the values must be equal, not the bytes.
		var gp, wp any
		json.Unmarshal(got.RequestParameters, &gp)
		json.Unmarshal(want.RequestParameters, &wp)
		if !reflect.DeepEqual(gp, wp) {
			t.Fatalf("parameters %s, want %s", got.RequestParameters, want.RequestParameters)
		}
		got.RequestParameters, want.RequestParameters = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
		}
	})
}

// TestGenuineSeedsVerify keeps the committed seeds meaningful: the genuine
// trails verify with the fixed key, the damaged ones do not.
func TestGenuineSeedsVerify(t *testing.T) {
	key := fuzzKey(t)
	for name, ok := range map[string]bool{"genuine-0": true, "genuine-1": true, "torn-tail-0": true, "unsealed-tail-0": true, "deleted-0": false, "edited-0": false} {
		raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzVerify", name))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(raw), "\n")
		data, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, file1), []byte(data), 0o600)
		if _, err := audit.Verify(dir, &key.PublicKey); (err == nil) != ok {
			t.Errorf("%s: verify %v", name, err)
		}
	}
}

// TestWriteSeeds writes the seed corpus under testdata/fuzz when
// COFFER_AUDIT_WRITE_SEEDS is set: go test -run TestWriteSeeds ./fuzz/audit/
func TestWriteSeeds(t *testing.T) {
	if os.Getenv("COFFER_AUDIT_WRITE_SEEDS") == "" {
		t.Skip("set COFFER_AUDIT_WRITE_SEEDS to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzVerify")
	os.MkdirAll(dir, 0o755)
	names := []string{"genuine", "torn-tail", "unsealed-tail", "deleted", "edited"}
	for i, seed := range genuineTrails(t, fuzzKey(t)) {
		// Split the trail between two files at a line, and mid-line.
		at := bytes.IndexByte(seed, '\n') + 1
		for j, split := range []int{at, at + 7} {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint16(%d)\n", seed, split)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d", names[i], j)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir = filepath.Join("testdata", "fuzz", "FuzzAnchor")
	os.MkdirAll(dir, 0o755)
	_, anchors := genuineAnchors(t, fuzzKey(t))
	for i, name := range []string{"slots", "torn-newer", "torn-older", "one-line", "forged-seq", "empty"} {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", anchors[i])
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir = filepath.Join("testdata", "fuzz", "FuzzRecordRoundTrip")
	os.MkdirAll(dir, 0o755)
	for name, c := range map[string]struct {
		name, agent, arn, params string
		seq                      uint64
	}{
		"typical":        {"GenerateDataKey", "aws-sdk-go-v2/1.47.7", "arn:aws:iam::111122223333:user/alice", `{"keyId":"alias/app","keySpec":"AES_256","encryptionContext":{"tenant":"acme"}}`, 42},
		"escapes":        {"\"\\\n\r\t\x00\x7f", "\u2028\u2029<>&", "\xff\xe2\x82", `{"a":"\u00e9\ud83d\ude00"}`, 1 << 63},
		"multiline-json": {"CreateKey", "", "", "{\n  \"keyUsage\": \"ENCRYPT_DECRYPT\",\r\n  \"tags\": []\n}\n", 1},
		"not-json":       {"Decrypt", "", "", `{"keyId":`, 0},
		"scalar-json":    {"ListKeys", "", "", ` 17 `, 7},
	} {
		body := fmt.Sprintf("go test fuzz v1\nstring(%q)\nstring(%q)\nstring(%q)\n[]byte(%q)\nuint64(%d)\n", c.name, c.agent, c.arn, c.params, c.seq)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
