package audit

import (
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"time"
)

// Several Coffer nodes on one database (keystore/postgres) each keep their
// own trail, hash-chained and signed on its own: one chain per writer is
// what makes a trail verifiable without coordination between nodes. The
// cluster's history is the union of the trails, which Trails finds and
// QueryTrails merges in time order; Verify checks each chain by itself.

// IsTrail reports whether dir is an audit directory: it holds trail
// files, the signing public key a Writer's owner puts beside them, or an
// anchor (a trail whose files were all deleted is still one, and broken).
func IsTrail(dir string) bool {
	fs, err := listFiles(dir)
	if err == nil && len(fs) > 0 {
		return true
	}
	for _, p := range []string{filepath.Join(dir, PublicKeyFile), AnchorPath(dir)} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// Trails resolves each of paths to the trails it names: a path that is a
// trail (IsTrail) names itself; any other directory names the trails
// among its subdirectories and their audit/ subdirectories (a directory
// of trails, or of nodes' data directories), in name order. A path that
// names none is an error, as is a trail named twice.
func Trails(paths ...string) ([]string, error) {
	var out []string
	for _, p := range paths {
		if IsTrail(p) {
			out = append(out, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		n := len(out)
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			sub := filepath.Join(p, e.Name())
			switch {
			case IsTrail(sub):
				out = append(out, sub)
			case IsTrail(filepath.Join(sub, "audit")):
				out = append(out, filepath.Join(sub, "audit"))
			}
		}
		if len(out) == n {
			return nil, fmt.Errorf("audit: %s is not an audit trail and holds none (nor <dir>/audit)", p)
		}
	}
	seen := map[string]bool{}
	for _, d := range out {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, err
		}
		if seen[abs] {
			return nil, fmt.Errorf("audit: the trail %s is named twice", d)
		}
		seen[abs] = true
	}
	return out, nil
}

// errStop ends a trail's reader early.
var errStop = errors.New("audit: stop")

// records is the records of the trail in dir that f selects, in trail
// order, as Query reads them.
func records(dir string, f Filter) iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		err := Query(dir, f, func(r *Record) error {
			if !yield(r, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && err != errStop {
			yield(nil, fmt.Errorf("%s: %w", dir, err))
		}
	}
}

// QueryTrails calls fn with every record that f selects in the trails
// dirs, each with the index in dirs of the trail it came from, merged in
// time order: each trail is read in its own order (as Query), and of the
// trails' next records the one with the earliest eventTime goes first,
// the first trail in dirs first among equal times (eventTime has one
// second's resolution). Records whose eventTime does not parse sort as
// the earliest. So a record is never older than one from another trail
// just before it; a trail's own records keep the order they were
// written in, which can put one a second before the record before it
// (the clock is read before the record waits for its turn) and puts
// records recovered from the outbox at start after newer ones. It stops
// at fn's first error and returns it. It reads one record ahead per
// trail, whatever the trails' sizes.
func QueryTrails(dirs []string, f Filter, fn func(trail int, r *Record) error) error {
	type head struct {
		next func() (*Record, error, bool)
		stop func()
		r    *Record
		t    time.Time
	}
	heads := make([]*head, 0, len(dirs))
	defer func() {
		for _, h := range heads {
			h.stop()
		}
	}()
	advance := func(h *head) error {
		r, err, ok := h.next()
		switch {
		case err != nil:
			return err
		case !ok:
			h.r = nil
			return nil
		}
		h.r = r
		h.t, _ = time.Parse(time.RFC3339, r.EventTime)
		return nil
	}
	for _, d := range dirs {
		next, stop := iter.Pull2(records(d, f))
		h := &head{next: next, stop: stop}
		heads = append(heads, h)
		if err := advance(h); err != nil {
			return err
		}
	}
	for {
		at := -1
		for i, h := range heads {
			if h.r != nil && (at < 0 || h.t.Before(heads[at].t)) {
				at = i
			}
		}
		if at < 0 {
			return nil
		}
		if err := fn(at, heads[at].r); err != nil {
			return err
		}
		if err := advance(heads[at]); err != nil {
			return err
		}
	}
}

// TrailReport is Verify's outcome for one trail of several.
type TrailReport struct {
	Dir    string
	Report *VerifyReport // nil when the trail could not be read at all
	Err    error         // nil when the trail verified
}

// VerifyTrails verifies each trail of dirs independently, each against
// the signing public key beside it (PublicKeyFile: each node signs its own
// trail), and returns one report per trail, in the order of dirs. err is
// nil only when every trail verified; it wraps each trail's failure
// (ErrBroken for a broken chain).
func VerifyTrails(dirs []string) ([]TrailReport, error) {
	out := make([]TrailReport, 0, len(dirs))
	var broken []error
	for _, d := range dirs {
		tr := TrailReport{Dir: d}
		pub, err := ReadPublicKey(d)
		if err != nil {
			tr.Err = fmt.Errorf("the audit signing public key (%s): %w", PublicKeyFile, err)
		} else {
			tr.Report, tr.Err = Verify(d, pub)
		}
		if tr.Err != nil {
			broken = append(broken, fmt.Errorf("%s: %w", d, tr.Err))
		}
		out = append(out, tr)
	}
	if len(broken) > 0 {
		return out, fmt.Errorf("%d of %d audit trails do not verify: %w", len(broken), len(dirs), errors.Join(broken...))
	}
	return out, nil
}
