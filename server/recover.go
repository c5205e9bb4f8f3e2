package server

import (
	"fmt"
	"runtime"
	"strings"
)

// panicError is a request's panic turned into an internal failure: the
// caller gets KMSInternalException, the server goes on, and the log says
// where it happened. The panic's value is not kept unless it is a runtime
// error (whose text holds only indexes and types): a value made by code
// could hold request data, plaintext included.
type panicError struct {
	op    string
	what  string
	where string
}

func (e *panicError) Error() string {
	return "panic serving " + e.op + ": " + e.what + " at " + e.where
}

// recovered describes the panic v of operation op; it is called from the
// deferred function that recovered it, so the stack still holds the frames
// that panicked.
func recovered(op string, v any) error {
	what := fmt.Sprintf("a value of type %T", v)
	if re, ok := v.(runtime.Error); ok {
		what = re.Error()
	}
	var pcs [32]uintptr
	n := runtime.Callers(3, pcs[:]) // skips Callers, recovered and the deferred function; runtime frames are dropped below
	frames := runtime.CallersFrames(pcs[:n])
	var where []string
	for len(where) < 8 {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") {
			where = append(where, fmt.Sprintf("%s (%s:%d)", f.Function, f.File, f.Line))
		}
		if !more {
			break
		}
	}
	return &panicError{op: op, what: what, where: strings.Join(where, " ← ")}
}
