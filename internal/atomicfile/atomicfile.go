// Package atomicfile writes files durably: the content goes to a temporary
// file beside the target, is synced, and is then put in place under the
// target's name; then the directory is synced so that the name itself
// survives a crash. A reader sees the old file or the new one, never a part
// of either, and a failure at any step leaves the target as it was and no
// temporary file.
package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
)

// Write replaces path with what fill writes to the temporary file, which
// has mode perm before fill runs. fill gets the *os.File itself, so a
// writer that can write at offsets may.
func Write(path string, perm os.FileMode, fill func(f *os.File) error) error {
	return write(path, perm, fill, os.Rename)
}

// WriteFile replaces path with data, with mode perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return write(path, perm, writeAll(data), os.Rename)
}

// Create writes data to path, with mode perm, as WriteFile does, but only
// when path does not exist yet: it never replaces a file (the error is then
// fs.ErrExist), even one another process created meanwhile.
func Create(path string, data []byte, perm os.FileMode) error {
	return write(path, perm, writeAll(data), os.Link)
}

// write fills a temporary file and gives it path's name with place
// (rename, or link to create only).
func write(path string, perm os.FileMode, fill func(f *os.File) error, place func(tmp, path string) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a rename, there is nothing left to remove
	err = tmp.Chmod(perm)
	if err == nil {
		err = fill(tmp)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = place(tmp.Name(), path)
	}
	if err != nil {
		return err
	}
	return SyncDir(dir)
}

func writeAll(data []byte) func(f *os.File) error {
	return func(f *os.File) error {
		_, err := f.Write(data)
		return err
	}
}

// SyncDir makes the entries of dir durable: files created, renamed or
// removed in it.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
