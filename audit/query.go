package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"time"
)

// Filter selects records for Query. Zero members select everything.
type Filter struct {
	EventName string    // the operation; "Digest" selects the digest records, which are left out otherwise
	KeyID     string    // key ID or ARN: matches a resource ARN or requestParameters.keyId
	Since     time.Time // eventTime at or after
	Until     time.Time // eventTime before
}

func (f *Filter) match(r *Record) bool {
	if (r.Digest != nil) != (f.EventName == EventNameDigest) {
		return false
	}
	if f.EventName != "" && r.EventName != f.EventName {
		return false
	}
	if f.KeyID != "" && !f.matchKey(r) {
		return false
	}
	if !f.Since.IsZero() || !f.Until.IsZero() {
		t, err := time.Parse(time.RFC3339, r.EventTime)
		if err != nil || (!f.Since.IsZero() && t.Before(f.Since)) || (!f.Until.IsZero() && !t.Before(f.Until)) {
			return false
		}
	}
	return true
}

func (f *Filter) matchKey(r *Record) bool {
	for _, res := range r.Resources {
		if sameKey(res.ARN, f.KeyID) {
			return true
		}
	}
	if len(r.RequestParameters) == 0 {
		return false
	}
	var p struct {
		KeyID string `json:"keyId"`
	}
	return json.Unmarshal(r.RequestParameters, &p) == nil && p.KeyID != "" && sameKey(p.KeyID, f.KeyID)
}

// sameKey reports whether two key references name the same key: equal, or
// one an ARN whose resource is "key/<the other>" or "<the other>" (aliases).
func sameKey(a, b string) bool {
	if a == b {
		return true
	}
	if len(a) < len(b) {
		a, b = b, a
	}
	return strings.HasPrefix(a, "arn:") && (strings.HasSuffix(a, ":key/"+b) || strings.HasSuffix(a, ":"+b))
}

// Query calls fn with every record in dir that f selects, in trail order,
// and stops at fn's first error, returning it. Query reads, it does not
// verify: lines that are not records and a torn final line are skipped.
func Query(dir string, f Filter, fn func(*Record) error) error {
	fs, err := listFiles(dir)
	if err != nil {
		return err
	}
	for _, tf := range fs {
		if _, err := readRecords(tf.path, 0, &f, fn); err != nil {
			return err
		}
	}
	return nil
}

// readRecords calls fn with the records f selects (all when f is nil) among
// the complete lines of path from offset from, and returns the offset after
// the last complete line.
func readRecords(path string, from int64, f *Filter, fn func(*Record) error) (int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return from, err
	}
	defer fh.Close()
	if _, err := fh.Seek(from, io.SeekStart); err != nil {
		return from, err
	}
	lr := newLineReader(fh)
	for {
		line, complete, err := lr.next()
		switch {
		case err == io.EOF || (err == nil && !complete):
			return from + lr.off, nil
		case err == errLineTooLong:
			continue
		case err != nil:
			return from + lr.off, err
		}
		var r Record
		if json.Unmarshal(line, &r) != nil || (f != nil && !f.match(&r)) {
			continue
		}
		if err := fn(&r); err != nil {
			return from + lr.off, err
		}
	}
}

// Tail calls fn with each record appended to dir from now on, in order and
// following rotation, until ctx ends (then it returns nil) or fn fails. It
// polls the directory; digest records are passed too.
func Tail(ctx context.Context, dir string, fn func(*Record) error) error {
	return tail(ctx, dir, 200*time.Millisecond, nil, fn)
}

// tail is Tail polling every poll, closing ready (when not nil) once it
// knows where "from now on" starts.
func tail(ctx context.Context, dir string, poll time.Duration, ready chan<- struct{}, fn func(*Record) error) error {
	var cur uint64 // sequence of the file being followed
	var off int64  // in it, after the last complete line read
	fs, err := listFiles(dir)
	if err != nil {
		return err
	}
	if len(fs) > 0 {
		last := fs[len(fs)-1]
		cur = last.seq
		if off, err = endOfLastLine(last.path); err != nil {
			return err
		}
	}
	if ready != nil {
		close(ready)
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		fs, err := listFiles(dir)
		if err != nil {
			return err
		}
		for _, tf := range fs {
			if tf.seq < cur {
				continue
			}
			if tf.seq > cur {
				cur, off = tf.seq, 0
			}
			// Open after a crash may cut a torn end Tail already passed;
			// it cuts at a line boundary, where Tail picks up again.
			if st, err := os.Stat(tf.path); err == nil && st.Size() < off {
				off = st.Size()
			}
			if off, err = readRecords(tf.path, off, nil, func(r *Record) error {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fn(r)
			}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// endOfLastLine is the offset after the last complete line of path,
// preallocated zeros after it not counted.
func endOfLastLine(path string) (int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return 0, err
	}
	end := st.Size()
	block := make([]byte, 64<<10)
	for end > 0 { // step back over the zeros
		chunk := block[:min(end, int64(len(block)))]
		if _, err := fh.ReadAt(chunk, end-int64(len(chunk))); err != nil && err != io.EOF {
			return 0, err
		}
		i := len(chunk) - 1
		for i >= 0 && chunk[i] == 0 {
			i--
		}
		end -= int64(len(chunk) - 1 - i)
		if i >= 0 {
			break
		}
	}
	tail := make([]byte, min(end, MaxLine+1))
	start := end - int64(len(tail))
	if _, err := fh.ReadAt(tail, start); err != nil && err != io.EOF {
		return 0, err
	}
	return start + int64(bytes.LastIndexByte(tail, '\n')+1), nil
}

// Recorded reports which of ids (request IDs) have a record in dir. The
// records sought are newer than since: it reads the trail's files from the
// newest back and stops after the first that holds an older record, so that
// a start after a crash reads only the trail's recent end.
func Recorded(dir string, ids []string, since time.Time) (map[string]bool, error) {
	found := map[string]bool{}
	if len(ids) == 0 {
		return found, nil
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	err := RecentRequestIDs(dir, since, func(id string) error {
		if want[id] {
			found[id] = true
			if len(found) == len(want) {
				return errEnough
			}
		}
		return nil
	})
	if err == errEnough {
		err = nil
	}
	return found, err
}

var errEnough = errors.New("audit: every request ID found")

// RecentRequestIDs calls fn with the request ID of every record (not
// digests nor gap records) in dir's files, from the newest file back to
// the first that holds a record older than since, until fn returns an
// error, which it returns. It is Recorded for a set of IDs too large to
// hold: the caller checks each against where the IDs are (the store's
// outbox, at a start after a bulk creation of a million keys).
func RecentRequestIDs(dir string, since time.Time, fn func(id string) error) error {
	fs, err := listFiles(dir)
	if err != nil {
		return err
	}
	for i := len(fs) - 1; i >= 0; i-- {
		older := false
		if _, err := readRecords(fs[i].path, 0, nil, func(r *Record) error {
			if t, err := time.Parse(time.RFC3339, r.EventTime); err == nil && t.Before(since) {
				older = true
			}
			if r.Digest == nil && r.Gap == nil {
				return fn(r.RequestID)
			}
			return nil
		}); err != nil {
			return err
		}
		if older {
			break
		}
	}
	return nil
}
