package keystore

import (
	"errors"
	"fmt"
	"time"
)

// lockWait is how long OpenBolt waits for another process's lock on the
// file before it says the file is in use: long enough for a process that
// is exiting to let go, short enough that a second `coffer serve` on the
// same data dir says why at once.
const lockWait = 500 * time.Millisecond

// ErrLocked reports a database that another process holds open.
var ErrLocked = errors.New("keystore: the database is in use by another process")

// LockedError is ErrLocked with the file and, where the system tells, the
// holder's process ID.
type LockedError struct {
	Path string
	PID  int // 0 when unknown
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s is in use by another process (PID %d)", e.Path, e.PID)
	}
	return e.Path + " is in use by another process"
}

func (e *LockedError) Unwrap() error { return ErrLocked }
