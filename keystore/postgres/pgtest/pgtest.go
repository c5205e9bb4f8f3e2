// Package pgtest starts a private PostgreSQL server for tests, from the
// machine's PostgreSQL 15 binaries: initdb and pg_ctl, run as the postgres
// user when the test runs as root (initdb refuses root), in a temporary
// directory that holds the cluster and its socket. One server per test
// binary (start it in TestMain) and one database per test keep tests
// independent and fast.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinDir holds the server binaries; COFFER_PG_BIN overrides it.
var BinDir = "/usr/lib/postgresql/15/bin"

// ErrUnavailable reports that the machine has no PostgreSQL binaries.
var ErrUnavailable = errors.New("pgtest: no PostgreSQL server binaries")

// Server is a private PostgreSQL cluster listening on 127.0.0.1.
type Server struct {
	Dir  string // temporary directory: data/ and the socket
	Port int
	bin  string
	uid  int // the postgres user, or -1 when running as it already
	gid  int
	next atomic.Int64
}

func binDir() string {
	if d := os.Getenv("COFFER_PG_BIN"); d != "" {
		return d
	}
	return BinDir
}

// ForTest starts a server for t and closes it when t ends. It skips t in
// -short mode (what says what the test starts) and when the binaries are
// missing.
func ForTest(t testing.TB, what string) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip(what)
	}
	pg, err := Start()
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("%v (install postgresql, or set COFFER_PG_BIN)", err)
	} else if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	return pg
}

// Start initialises and starts a server. It returns ErrUnavailable when
// the binaries are missing, so that callers can skip.
func Start() (*Server, error) {
	bin := binDir()
	if _, err := os.Stat(filepath.Join(bin, "initdb")); err != nil {
		return nil, fmt.Errorf("%w at %s", ErrUnavailable, bin)
	}
	dir, err := os.MkdirTemp("", "coffer-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, bin: bin, uid: -1, gid: -1}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: running as root needs a postgres user: %w", err)
		}
		s.uid, _ = strconv.Atoi(u.Uid)
		s.gid, _ = strconv.Atoi(u.Gid)
		if err := os.Chown(dir, s.uid, s.gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if out, err := s.run("initdb", "-D", s.data(), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	if err := s.StartAgain(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (s *Server) data() string { return filepath.Join(s.Dir, "data") }

func (s *Server) run(name string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, name)
	var cmd *exec.Cmd
	if s.uid >= 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = s.Dir
	return cmd.CombinedOutput()
}

// StartAgain starts the server after Stop, on the same port and data.
func (s *Server) StartAgain() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=300", s.Port, s.Dir)
	if out, err := s.run("pg_ctl", "-D", s.data(), "-o", opts, "-l", filepath.Join(s.Dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
		return fmt.Errorf("pgtest: pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	return nil
}

// Stop stops the server immediately (as a crash would), keeping its data.
func (s *Server) Stop() error {
	if out, err := s.run("pg_ctl", "-D", s.data(), "-m", "immediate", "-w", "stop"); err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

// Close stops the server and removes its directory. A nil Server is fine.
func (s *Server) Close() {
	if s == nil {
		return
	}
	s.Stop()
	os.RemoveAll(s.Dir)
}

// URL is the connection string of database db.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// Database creates a fresh, empty database for t and returns its URL; it
// is dropped when t ends. On a nil Server (no binaries) it skips t.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	if s == nil {
		t.Skipf("PostgreSQL server binaries not found at %s (install postgresql, or set COFFER_PG_BIN)", binDir())
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.next.Add(1))
	if err := s.exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	return s.URL(name)
}

func (s *Server) exec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
}

// Main runs m with a server started in *srv (left nil when the machine has
// no binaries: Database then skips) and stops it after; for TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }
func Main(m *testing.M, srv **Server) int {
	s, err := Start()
	if err != nil && !errors.Is(err, ErrUnavailable) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*srv = s
	defer s.Close()
	return m.Run()
}
