package audit

import "syscall"

// freeSpace is the space an unprivileged writer may still use on dir's
// file system, in bytes.
func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// fileState is what the Writer checks of its open file at every commit:
// its size, and whether any name still links to it.
func fileState(f file) (size int64, linked bool, ok bool) {
	d, isOS := f.(*dataSyncFile)
	if !isOS {
		return 0, false, false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(d.Fd()), &st); err != nil {
		return 0, false, false
	}
	return st.Size, st.Nlink > 0, true
}
