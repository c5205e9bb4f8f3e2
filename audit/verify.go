package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	Files, Records, Digests int
	LastSeq                 uint64
	// Unsealed counts records after the last digest: chained, but not yet
	// covered by a signature (a crash before the next digest leaves some).
	Unsealed int
	// Bad describes the first broken record; nil when the chain holds.
	Bad *BadRecord
}

// BadRecord names the first record that breaks the chain.
type BadRecord struct {
	File   string
	Line   int
	Seq    uint64
	Reason string
}

func (b *BadRecord) Error() string {
	return fmt.Sprintf("audit: %s line %d (seq %d): %s", filepath.Base(b.File), b.Line, b.Seq, b.Reason)
}

// ErrBroken is wrapped by Verify's error when the chain does not hold.
var ErrBroken = errors.New("audit: chain broken")

// MaxLine bounds the records Verify and Query read.
const MaxLine = 1 << 20

// Verify replays the chain of every file in dir in order, checking each
// record's sequence and link to its predecessor and every digest's
// signature, and names the first bad record.
func Verify(dir string, pub *ecdsa.PublicKey) (*VerifyReport, error) {
	names, err := files(dir)
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{Files: len(names)}
	var prevHash string
	var seq, sealed uint64
	bad := func(file string, line int, s uint64, format string, args ...any) (*VerifyReport, error) {
		rep.Bad = &BadRecord{File: file, Line: line, Seq: s, Reason: fmt.Sprintf(format, args...)}
		return rep, fmt.Errorf("%w: %s", ErrBroken, rep.Bad.Error())
	}
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), MaxLine)
		line := 0
		for sc.Scan() {
			line++
			raw := sc.Bytes()
			var r Record
			if err := json.Unmarshal(raw, &r); err != nil {
				f.Close()
				return bad(name, line, seq+1, "not a JSON record")
			}
			switch {
			case r.Seq == seq+1 && r.PrevHash == prevHash:
			case r.Seq == seq+1:
				// The link is wrong: the previous line was edited, or this one.
				f.Close()
				return bad(name, line-1, seq, "the record was changed: the next record's link does not match it")
			case r.Seq <= seq:
				f.Close()
				return bad(name, line, r.Seq, "out of order or inserted: seq %d follows seq %d", r.Seq, seq)
			default:
				f.Close()
				return bad(name, line, r.Seq, "records are missing or out of order: seq %d follows seq %d", r.Seq, seq)
			}
			if r.Digest != nil {
				d := r.Digest
				if d.HeadHash != prevHash || d.FirstSeq != sealed+1 || d.LastSeq != seq {
					f.Close()
					return bad(name, line, r.Seq, "digest does not describe the chain before it")
				}
				sum := sha256.Sum256(d.signedBytes())
				if pub == nil || !ecdsa.VerifyASN1(pub, sum[:], d.Signature) {
					f.Close()
					return bad(name, line, r.Seq, "digest signature does not verify")
				}
				sealed = r.Seq
				rep.Digests++
			}
			sum := sha256.Sum256(raw)
			prevHash, seq = hex.EncodeToString(sum[:]), r.Seq
			rep.Records++
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return bad(name, line+1, seq+1, "unreadable: %v", err)
		}
	}
	rep.LastSeq = seq
	rep.Unsealed = int(seq - sealed)
	return rep, nil
}

// Filter selects records for Query.
type Filter struct {
	EventName string
	KeyID     string // matches a resource ARN or the requestParameters keyId
	Since     time.Time
	Until     time.Time
}

func (f *Filter) match(r *Record) bool {
	if r.Digest != nil {
		return false
	}
	if f.EventName != "" && r.EventName != f.EventName {
		return false
	}
	if f.KeyID != "" {
		found := false
		for _, res := range r.Resources {
			if res.ARN == f.KeyID || strings.HasSuffix(res.ARN, "/"+f.KeyID) {
				found = true
			}
		}
		if !found && !bytes.Contains(r.RequestParameters, []byte(`"`+f.KeyID+`"`)) {
			return false
		}
	}
	if !f.Since.IsZero() || !f.Until.IsZero() {
		t, err := time.Parse(time.RFC3339, r.EventTime)
		if err != nil || (!f.Since.IsZero() && t.Before(f.Since)) || (!f.Until.IsZero() && !t.Before(f.Until)) {
			return false
		}
	}
	return true
}

// Query calls fn with every record in dir that f selects, in order.
func Query(dir string, f Filter, fn func(*Record) error) error {
	names, err := files(dir)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := scanFile(name, 0, func(r *Record) error {
			if f.match(r) {
				return fn(r)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func scanFile(name string, from int64, fn func(*Record) error) error {
	fh, err := os.Open(name)
	if err != nil {
		return err
	}
	defer fh.Close()
	if _, err := fh.Seek(from, io.SeekStart); err != nil {
		return err
	}
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), MaxLine)
	for sc.Scan() {
		var r Record
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return sc.Err()
}

// Tail calls fn with each record appended to dir from now on, following
// rotation, until ctx ends.
func Tail(ctx context.Context, dir string, fn func(*Record) error) error {
	names, err := files(dir)
	if err != nil {
		return err
	}
	var cur string
	var off int64
	if len(names) > 0 {
		cur = names[len(names)-1]
		if st, err := os.Stat(cur); err == nil {
			off = st.Size()
		}
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		names, err := files(dir)
		if err != nil {
			return err
		}
		for _, name := range names {
			if name < cur {
				continue
			}
			if name != cur {
				cur, off = name, 0
			}
			st, err := os.Stat(name)
			if err != nil || st.Size() <= off {
				continue
			}
			// Read complete lines only.
			raw := make([]byte, st.Size()-off)
			fh, err := os.Open(name)
			if err != nil {
				continue
			}
			n, _ := fh.ReadAt(raw, off)
			fh.Close()
			raw = raw[:n]
			end := bytes.LastIndexByte(raw, '\n') + 1
			for _, line := range bytes.Split(raw[:end], []byte("\n")) {
				var r Record
				if len(line) == 0 || json.Unmarshal(line, &r) != nil {
					continue
				}
				if err := fn(&r); err != nil {
					return err
				}
			}
			off += int64(end)
		}
	}
}

// PublicKeyFile is the name of the exported verification key.
const PublicKeyFile = "audit-signing.pub"

// WritePublicKey exports the audit signing key's public half as PEM.
func WritePublicKey(dir string, pub *ecdsa.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, PublicKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
}

// ReadPublicKey reads the key WritePublicKey wrote.
func ReadPublicKey(dir string) (*ecdsa.PublicKey, error) {
	raw, err := os.ReadFile(filepath.Join(dir, PublicKeyFile))
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, errors.New("audit: no PEM block in " + PublicKeyFile)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("audit: the signing key is not ECDSA")
	}
	return pub, nil
}
