//go:build !linux

package audit

import "os"

// datasync makes f durable; without fdatasync that is a full fsync.
func datasync(f *os.File) error { return f.Sync() }

// dropCache does nothing where there is no posix_fadvise.
func dropCache(*os.File, int64, int64) {}
