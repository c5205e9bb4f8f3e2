package audit

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hourlyTrail writes n records an hour apart (digest every 4, a few
// records per file) and returns the config, the clock at the first record
// and the public key.
func hourlyTrail(t *testing.T, n int) (Config, time.Time, *ecdsa.PrivateKey) {
	key := newKey(t)
	c := newClock()
	start := c.Now()
	cfg := Config{Dir: filepath.Join(t.TempDir(), "audit"), Signer: key, DigestEvery: 4, MaxFileBytes: 2500, Now: c.Now}
	w := mustOpen(t, cfg)
	for i := range n {
		r := rec(i)
		r.EventTime = ""
		if err := w.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		c.Add(time.Hour)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.Now = c.Now
	return cfg, start, key
}

func archiveCfg(t *testing.T, cfg Config, before time.Time) ArchiveConfig {
	return ArchiveConfig{Dir: cfg.Dir, To: filepath.Join(filepath.Dir(cfg.Dir), "archive"), Before: before, Signer: cfg.Signer, Now: cfg.Now}
}

func TestArchiveHalfTheTrail(t *testing.T) {
	cfg, start, key := hourlyTrail(t, 24)
	pub := &key.PublicKey
	before := mustVerify(t, cfg.Dir, pub)
	ac := archiveCfg(t, cfg, start.Add(12*time.Hour))
	rep, err := Archive(ac)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Archived) < 2 || rep.Manifest == nil || len(trail(t, cfg.Dir)) < 2 {
		t.Fatalf("nothing archived: %+v", rep)
	}
	for _, s := range rep.Archived {
		if _, err := os.Stat(filepath.Join(cfg.Dir, s.Name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still in the trail", s.Name)
		}
		sc, err := scanSegment(filepath.Join(ac.To, s.Name))
		if err != nil || !sc.newest.Before(ac.Before) || sc.sum != s.SHA256 {
			t.Errorf("%s (seq %d..%d) archived with records of %s: %v", s.Name, s.FirstSeq, s.LastSeq, sc.newest, err)
		}
	}
	after := mustVerify(t, cfg.Dir, pub)
	if after.Archive == nil || after.Archive.FirstSeq != rep.Archived[len(rep.Archived)-1].LastSeq+1 || after.LastSeq != before.LastSeq {
		t.Fatalf("after archiving: %+v (before: last seq %d)", after, before.LastSeq)
	}
	if after.Files+len(rep.Archived) != before.Files {
		t.Fatalf("%d files before, %d after, %d archived", before.Files, after.Files, len(rep.Archived))
	}
	if _, arep, err := VerifyArchive(cfg.Dir, ac.To, pub); err != nil || arep.LastSeq+1 != after.Archive.FirstSeq {
		t.Fatalf("VerifyArchive: %v", err)
	}
	// The Writer goes on from the kept trail, and a second archive run
	// extends the manifest.
	writeN(t, cfg, 100, 6)
	mustVerify(t, cfg.Dir, pub)
	ac.Before = start.Add(100 * time.Hour)
	rep2, err := Archive(ac)
	if err != nil || len(rep2.Archived) == 0 {
		t.Fatalf("second run: %v %+v", err, rep2)
	}
	final := mustVerify(t, cfg.Dir, pub)
	if final.Archive.FirstSeq <= after.Archive.FirstSeq || len(final.Archive.Segments) != len(rep.Archived)+len(rep2.Archived) {
		t.Fatalf("second manifest: %+v", final.Archive)
	}
	if _, _, err := VerifyArchive(cfg.Dir, ac.To, pub); err != nil {
		t.Fatal(err)
	}
	// A changed archived segment is caught.
	first := filepath.Join(ac.To, final.Archive.Segments[0].Name)
	lines := fileLines(t, first)
	lines[0] = []byte(strings.Replace(string(lines[0]), "Encrypt", "Decrypt", 1))
	writeLines(t, first, lines)
	if _, _, err := VerifyArchive(cfg.Dir, ac.To, pub); !errors.Is(err, ErrBroken) {
		t.Fatalf("changed archived segment: %v", err)
	}
}

// A segment kept after archiving, deleted, is a hole Verify names.
func TestArchiveThenDeleteRetained(t *testing.T) {
	cfg, start, key := hourlyTrail(t, 24)
	if _, err := Archive(archiveCfg(t, cfg, start.Add(12*time.Hour))); err != nil {
		t.Fatal(err)
	}
	fs := trail(t, cfg.Dir)
	os.Remove(fs[0].path)
	bad := mustBreak(t, cfg.Dir, &key.PublicKey)
	if !strings.Contains(bad.Reason, "missing") {
		t.Fatalf("deleted first kept segment: %+v", bad)
	}
	// And so is the manifest deleted: the trail no longer starts at seq 1.
	cfg2, start2, key2 := hourlyTrail(t, 24)
	if _, err := Archive(archiveCfg(t, cfg2, start2.Add(12*time.Hour))); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(cfg2.Dir, ManifestFile))
	if bad := mustBreak(t, cfg2.Dir, &key2.PublicKey); !strings.Contains(bad.Reason, "missing") {
		t.Fatalf("deleted manifest: %+v", bad)
	}
}

// The live file, and anything after the last digest, stay, even when
// every record is older than the time, and with a Writer appending.
func TestArchiveRefusesTheLiveFile(t *testing.T) {
	cfg, start, key := hourlyTrail(t, 24)
	w := mustOpen(t, cfg)
	if err := w.Append(context.Background(), rec(50)); err != nil {
		t.Fatal(err)
	}
	live := trail(t, cfg.Dir)
	newest := live[len(live)-1].path
	rep, err := Archive(archiveCfg(t, cfg, start.Add(1000*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Archived {
		if s.Name == filepath.Base(newest) || s.LastSeq >= rep.Manifest.FirstSeq {
			t.Fatalf("archived %+v (newest %s)", s, newest)
		}
	}
	if _, err := os.Stat(newest); err != nil {
		t.Fatalf("the live file: %v", err)
	}
	if err := w.Append(context.Background(), rec(51)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, cfg.Dir, &key.PublicKey)
}

// A crash after the copies, or after the manifest, leaves a trail that
// verifies, and a re-run finishes the archive.
func TestArchiveCrashThenRerun(t *testing.T) {
	for _, step := range []string{"copied", "manifest"} {
		t.Run(step, func(t *testing.T) {
			cfg, start, key := hourlyTrail(t, 24)
			pub := &key.PublicKey
			files := len(trail(t, cfg.Dir))
			ac := archiveCfg(t, cfg, start.Add(12*time.Hour))
			ac.crash = func(s string) bool { return s == step }
			if _, err := Archive(ac); !errors.Is(err, errCrashed) {
				t.Fatalf("crash hook: %v", err)
			}
			rep := mustVerify(t, cfg.Dir, pub)
			if len(trail(t, cfg.Dir)) != files {
				t.Fatal("an original was removed before the manifest")
			}
			if step == "manifest" && (rep.Archive == nil || rep.ArchivedLeft == 0) {
				t.Fatalf("after a crash past the manifest: %+v", rep)
			}
			ac.crash = nil
			done, err := Archive(ac)
			if err != nil || len(done.Archived) == 0 {
				t.Fatalf("re-run: %v %+v", err, done)
			}
			rep = mustVerify(t, cfg.Dir, pub)
			if rep.ArchivedLeft != 0 || rep.Archive == nil || len(trail(t, cfg.Dir))+len(rep.Archive.Segments) != files {
				t.Fatalf("after the re-run: %+v", rep)
			}
			if _, _, err := VerifyArchive(cfg.Dir, ac.To, pub); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A trail that does not verify is not archived.
func TestArchiveRefusesBrokenTrail(t *testing.T) {
	cfg, start, _ := hourlyTrail(t, 24)
	fs := trail(t, cfg.Dir)
	lines := fileLines(t, fs[1].path)
	lines[0] = []byte(strings.Replace(string(lines[0]), "Encrypt", "Decrypt", 1))
	writeLines(t, fs[1].path, lines)
	if _, err := Archive(archiveCfg(t, cfg, start.Add(12*time.Hour))); !errors.Is(err, ErrBroken) {
		t.Fatalf("broken trail archived: %v", err)
	}
}
