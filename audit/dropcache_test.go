package audit

import (
	"context"
	"sync"
	"testing"
)

// droppingFile checks the Writer's page-cache drops against what it wrote
// and made durable.
type droppingFile struct {
	*dataSyncFile
	t *testing.T

	mu       sync.Mutex
	written  int64 // end of the furthest record write (zeros not counted)
	durable  int64 // written, as of the last Sync
	dropEnd  int64 // end of the last drop
	drops    int
	zerosEnd int64
}

func (f *droppingFile) WriteAt(b []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if off < f.dropEnd {
		f.t.Errorf("write at %d into a dropped page (dropped below %d)", off, f.dropEnd)
	}
	if len(b) > 0 && b[0] == 0 && off >= f.written { // preallocation
		f.zerosEnd = max(f.zerosEnd, off+int64(len(b)))
	} else {
		f.written = max(f.written, off+int64(len(b)))
	}
	return f.dataSyncFile.WriteAt(b, off)
}

func (f *droppingFile) Sync() error {
	err := f.dataSyncFile.Sync()
	f.mu.Lock()
	f.durable = f.written
	f.mu.Unlock()
	return err
}

func (f *droppingFile) DropCache(off, n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	page := int64(pageSize)
	switch {
	case off%page != 0 || n%page != 0 || n <= 0:
		f.t.Errorf("drop of [%d, %d): not whole pages", off, off+n)
	case off+n < f.dropEnd:
		f.t.Errorf("drop to %d, short of the last one's end, %d", off+n, f.dropEnd)
	case off+n > f.durable&^(page-1):
		f.t.Errorf("drop to %d reaches past the whole durable pages (%d bytes durable)", off+n, f.durable)
	}
	f.drops++
	f.dropEnd = off + n
	f.dataSyncFile.DropCache(off, n)
}

// The Writer drops the cached pages of durable records, whole pages at a
// time, and never one it writes into again; the trail reads back whole.
func TestDropsDurablePages(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	var files []*droppingFile
	w, err := openWith(Config{Dir: dir, Signer: key, DigestEvery: 100}, func(path string, fresh bool) (file, error) {
		f, err := createFile(path, fresh)
		if err != nil {
			return nil, err
		}
		df := &droppingFile{dataSyncFile: f.(*dataSyncFile), t: t}
		files = append(files, df)
		return df, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000 // about 2 MiB of records
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n; i += 8 {
				if err := w.Append(context.Background(), rec(i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("%d files, want 1", len(files))
	}
	f := files[0]
	if min := f.written - 2*dropChunk; f.dropEnd < min {
		t.Fatalf("dropped below %d of %d bytes of records (%d drops), want at least %d", f.dropEnd, f.written, f.drops, min)
	}
	rep, err := Verify(dir, &key.PublicKey)
	if err != nil || rep.Records-rep.Digests != n {
		t.Fatalf("verify: %+v, %v; want %d records and their digests", rep, err, n)
	}
}
