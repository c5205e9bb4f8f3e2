package audit

import (
	"encoding/hex"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// A Writer that cannot write its trail refuses every Append until it can:
// the writer goroutine retries (probe) after retryMin, doubling up to
// retryMax, and once a retry succeeds the trail goes on from its durable
// head with no restart. Two failures are not retried: a trail file deleted
// or cut short under the Writer (records it acknowledged are gone); the
// Writer refuses until a restart, where Open names the gap.

// failure is why the Writer refuses Appends.
type failure struct {
	err   error // what Append returns: wraps ErrUnavailable and the cause
	short error // what Err returns: a short cause wrapping the same error
	fatal bool  // no retry heals it
}

// Errors that only a restart (and the operator) resolve.
var (
	errFileDeleted   = errors.New("trail file deleted")
	errFileTruncated = errors.New("trail file truncated")
)

// causeError is a short cause for /readyz that still wraps the error.
type causeError struct {
	msg string
	err error
}

func (e *causeError) Error() string { return e.msg }
func (e *causeError) Unwrap() error { return e.err }

// shortCause names what an operator must fix.
func shortCause(err error) string {
	switch {
	case errors.Is(err, errFileDeleted):
		return errFileDeleted.Error()
	case errors.Is(err, errFileTruncated):
		return errFileTruncated.Error()
	case errors.Is(err, syscall.ENOSPC):
		return "no space"
	case errors.Is(err, syscall.EDQUOT):
		return "disk quota exceeded"
	case errors.Is(err, syscall.EROFS):
		return "read-only file system"
	case errors.Is(err, syscall.EIO):
		return "I/O error"
	}
	return err.Error()
}

// Err reports the Writer's health: nil while Append can succeed, else a
// short cause ("no space", "I/O error", "trail file deleted", …) wrapping
// the error. It is cheap and safe for concurrent use, for a readiness
// check.
func (w *Writer) Err() error {
	if f := w.state.Load(); f != nil {
		return f.short
	}
	w.closeMu.RLock()
	closed := w.closed
	w.closeMu.RUnlock()
	if closed {
		return errors.New("closed")
	}
	return nil
}

// fail puts the Writer in its failing state, logging the change, and
// returns the error Append returns from now on. A failure no retry heals
// is kept over any later one.
func (w *Writer) fail(cause error) error {
	fatal := errors.Is(cause, errFileDeleted) || errors.Is(cause, errFileTruncated)
	old := w.state.Load()
	if old != nil && old.fatal {
		return old.err
	}
	f := &failure{err: fmt.Errorf("%w: %w", ErrUnavailable, cause), short: &causeError{shortCause(cause), cause}, fatal: fatal}
	w.state.Store(f)
	switch {
	case fatal:
		w.cfg.Logger.Error("audit trail failing: refusing calls until a restart", "cause", f.short.Error(), "err", cause)
		// Record the head the Writer knows is durable, so that the restart
		// sees what was lost.
		if err := w.writeAnchor(); err != nil {
			w.cfg.Logger.Error("audit trail: cannot anchor the head", "err", err)
		}
	case old == nil:
		w.backoff = retryMin
		w.cfg.Logger.Error("audit trail failing: refusing calls, retrying", "cause", f.short.Error(), "err", cause)
	case old.short.Error() != f.short.Error():
		w.cfg.Logger.Error("audit trail still failing, for another cause", "cause", f.short.Error(), "err", cause)
	}
	return f.err
}

// retry tries to make the trail writable again, and heals the Writer when
// it can; else it waits twice as long before the next try.
func (w *Writer) retry() {
	err := w.probe()
	if err != nil {
		w.fail(err)
		w.backoff = min(2*w.backoff, retryMax)
		return
	}
	if old := w.state.Swap(nil); old != nil {
		w.cfg.Logger.Info("audit trail healthy again: serving calls", "was", old.short.Error())
	}
	w.backoff = retryMin
}

// probe does what a failed commit could not: open a file when there is
// none, write again what is written but not durable (rewriteUnsynced),
// rewrite with zeros (and fsync) whatever a failed write left past
// the records plus one page, which exercises the write and fsync that
// failed and makes room for the next record, and bring the anchor up to
// the durable head.
func (w *Writer) probe() error {
	if w.f == nil {
		if err := w.rotate(w.cfg.Now()); err != nil {
			return err
		}
	}
	if err := w.checkFile(); err != nil {
		return err
	}
	if err := w.rewriteUnsynced(); err != nil {
		return err
	}
	end := max(w.dirty, w.fileBytes+int64(pageSize))
	if err := w.reserve(end); err != nil {
		return err
	}
	for off := w.fileBytes; off < end; {
		n := int(min(int64(len(zeros)), end-off))
		if _, err := w.f.WriteAt(zeros[:n], off); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		off += int64(n)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	w.allocated, w.dirty = max(w.allocated, end), 0
	w.markDurable()
	if w.durable.seq > w.anchored {
		return w.writeAnchor()
	}
	return nil
}

// rewriteUnsynced writes again what the Writer wrote since the last
// fdatasync that succeeded (SyncInterval): after a failed fdatasync the
// kernel may have marked those pages clean without writing them, and a
// later fdatasync would then succeed without making them durable.
func (w *Writer) rewriteUnsynced() error {
	if len(w.unsynced) == 0 {
		return nil
	}
	if _, err := w.f.WriteAt(w.unsynced, w.synced); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// checkFile notices a trail file deleted or cut short under the Writer
// (where the platform says: Linux).
func (w *Writer) checkFile() error {
	size, linked, ok := fileState(w.f)
	switch {
	case !ok:
		return nil
	case !linked:
		return errFileDeleted
	case size < w.fileBytes:
		return fmt.Errorf("%w: %d bytes where %d were written", errFileTruncated, size, w.fileBytes)
	}
	return nil
}

// anchorDue rewrites the anchor when the durable head has moved past it
// and force is set (Close), a digest the anchor does not cover is durable,
// or the anchor is AnchorInterval old. A digest counts once durable, not
// once written: with SyncInterval it is written a while before, and an
// anchor then would name a head before it.
func (w *Writer) anchorDue(force bool) {
	if w.durable.seq <= w.anchored ||
		(!force && w.durable.sealed <= w.anchored && time.Since(w.anchorAt) < w.cfg.AnchorInterval) {
		return
	}
	if err := w.writeAnchor(); err != nil {
		w.fail(err)
	}
}

// writeAnchor records the durable head in the anchor file: in place, in
// the slot after the one written last, once the Writer has replaced the
// file whole (at Open, and again after a failed write or when the file is
// not the one it wrote).
func (w *Writer) writeAnchor() error {
	slot, err := encodeAnchor(w.cfg.Signer, w.durable.seq, &w.durable.prev, w.cfg.Now())
	if err != nil {
		return err
	}
	err = errAnchorReplaced
	if w.anchorWrites > 0 {
		err = writeAnchorSlot(w.anchor, w.anchorWrites%anchorSlots, slot)
	}
	if errors.Is(err, errAnchorReplaced) {
		w.anchorWrites = 0
		err = replaceAnchor(w.anchor, slot)
	}
	if err != nil {
		w.anchorWrites = 0 // the slot may be torn: the next write replaces the file
		return err
	}
	w.anchorWrites++
	w.anchored, w.anchorAt = w.durable.seq, time.Now()
	return nil
}

// roomToPreallocate reports whether n more bytes of preallocation leave
// MinFree free. Below it the Writer does not preallocate (it asks again
// after a second), so that zeros never take the last of the disk.
func (w *Writer) roomToPreallocate(n int64) bool {
	if w.cfg.MinFree < 0 {
		return true
	}
	if !w.lowSpace.IsZero() && time.Since(w.lowSpace) < time.Second {
		return false
	}
	free, err := w.cfg.freeSpace(w.cfg.Dir)
	if err != nil || free-n >= w.cfg.MinFree {
		if !w.lowSpace.IsZero() {
			w.cfg.Logger.Info("audit trail: free space back above the reserve, preallocating again")
			w.lowSpace = time.Time{}
		}
		return true
	}
	if w.lowSpace.IsZero() {
		w.cfg.Logger.Warn("audit trail: free space under the reserve, not preallocating",
			"free", free, "reserve", w.cfg.MinFree, "dir", w.cfg.Dir)
	}
	w.lowSpace = time.Now()
	return false
}

// checkAnchor compares the recovered head with the anchor. It returns the
// last missing sequence number when the trail ends before the anchor and
// AcknowledgeGap asked to record that; otherwise such a trail is refused.
func (w *Writer) checkAnchor() (gapLast uint64, err error) {
	pk, _ := signerKey(w.cfg.Signer)
	a, err := ReadAnchor(w.cfg.Dir, pk)
	if err != nil {
		return 0, err
	}
	ack := w.cfg.gapAck
	if a == nil {
		if ack != nil {
			return 0, fmt.Errorf("audit: %s has no anchor: there is no gap to acknowledge", w.cfg.Dir)
		}
		if w.seq > 0 {
			w.cfg.Logger.Warn("audit trail: no anchor (a trail from before anchors, or the anchor was removed): anchoring it where it ends",
				"seq", w.seq, "anchor", w.anchor)
		}
		return 0, nil
	}
	w.anchored = a.Seq
	if a.Damaged != "" {
		w.cfg.Logger.Warn("audit trail: one slot of the anchor does not verify (a write cut short by a crash, or the file changed): using the other",
			"anchor", w.anchor, "slot", a.Damaged, "seq", a.Seq)
	}
	switch {
	case a.Seq > w.seq && ack != nil:
		return a.Seq, nil
	case a.Seq > w.seq:
		return 0, fmt.Errorf("%w: the trail in %s ends at seq %d, but its anchor (written %s) records seq %d: records %d..%d are missing (a file deleted or the tail cut); run `coffer audit verify`, restore them, or record the loss with `coffer audit acknowledge-gap`",
			ErrGap, w.cfg.Dir, w.seq, a.Time, a.Seq, w.seq+1, a.Seq)
	case a.Seq == w.seq && a.Seq > 0 && a.HeadHash != hex.EncodeToString(w.prev[:]):
		return 0, fmt.Errorf("%w: the record at seq %d in %s is not the one its anchor records: the end of the trail was replaced; run `coffer audit verify`",
			ErrGap, w.seq, w.cfg.Dir)
	case ack != nil:
		return 0, fmt.Errorf("audit: no gap to acknowledge: the trail in %s reaches its anchor (seq %d)", w.cfg.Dir, a.Seq)
	}
	return 0, nil
}
