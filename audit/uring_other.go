//go:build !linux

package audit

import (
	"errors"
	"os"
)

// syncRing is io_uring's fdatasync, which only Linux has.
type syncRing struct{}

func newSyncRing() (*syncRing, error) { return nil, errors.New("audit: io_uring is Linux only") }

func (*syncRing) fdatasync(*os.File) error { return errors.ErrUnsupported }

func (*syncRing) close() {}
