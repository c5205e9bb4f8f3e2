// Command pagecache measures what audit.Writer's page-cache recycling is
// for: a file that grows as the audit trail does (110 KiB of records per
// fdatasync, 4 MiB of zeros preallocated ahead of them), timing each 4 MiB
// preallocation, with the durable pages' cache kept or dropped
// (fadvise DONTNEED every 256 KiB, as the Writer does).
//
//	go run ./bench/pagecache -mode keep -dir .
//	go run ./bench/pagecache -mode drop -dir .
//
// The directory must be on a real disk: on tmpfs there is no page cache to
// drop.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	mode := flag.String("mode", "drop", "keep or drop the durable pages' cache")
	dir := flag.String("dir", ".", "directory for the scratch file")
	total := flag.Int64("mib", 600, "MiB of records to write")
	flag.Parse()
	if *mode != "keep" && *mode != "drop" {
		log.Fatalf("-mode %q: want keep or drop", *mode)
	}
	path := filepath.Join(*dir, "pagecache.scratch")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(path)
	defer f.Close()

	zeros := make([]byte, 64<<10)
	rec := make([]byte, 110<<10)
	for i := range rec {
		rec[i] = 'a'
	}
	check := func(err error) {
		if err != nil {
			log.Fatal(err)
		}
	}
	var reserves []time.Duration
	var allocated, written, dropped int64
	for written < *total<<20 {
		if written+int64(len(rec)) > allocated {
			start := time.Now()
			for range 64 { // 4 MiB
				_, err := f.WriteAt(zeros, allocated)
				check(err)
				allocated += int64(len(zeros))
			}
			reserves = append(reserves, time.Since(start))
			check(unix.Fdatasync(int(f.Fd())))
		}
		_, err := f.WriteAt(rec, written)
		check(err)
		written += int64(len(rec))
		check(unix.Fdatasync(int(f.Fd())))
		if end := written &^ 4095; *mode == "drop" && end-dropped >= 256<<10 {
			check(unix.Fadvise(int(f.Fd()), 0, end, unix.FADV_DONTNEED))
			dropped = end
		}
	}
	slices.Sort(reserves)
	n := len(reserves)
	fmt.Printf("%s: %d preallocations of 4 MiB: min %v, median %v, p90 %v, max %v\n",
		*mode, n, reserves[0], reserves[n/2], reserves[n*9/10], reserves[n-1])
}
