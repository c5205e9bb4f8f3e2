package postgres

import (
	"context"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coffer-kms/coffer/keystore"
)

var _ keystore.Locker = (*Store)(nil)

// lockKey is the advisory lock key of a named lock: the 64-bit FNV-1a of
// "coffer:"+name, so that distinct names, migrationLock and another
// application's small integers meet only by a 2^-64 chance.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("coffer:" + name))
	return int64(h.Sum64())
}

// TryLock implements keystore.Locker with a session-level advisory lock,
// pg_try_advisory_lock, on a connection taken from the pool and held until
// unlock: of all nodes, one holds name at a time, and a node that dies (or
// whose connection is lost) releases it with its session. It never waits.
func (s *Store) TryLock(ctx context.Context, name string) (unlock func(), ok bool, err error) {
	if s.closed.Load() {
		return nil, false, keystore.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, dbErr(ctx, err)
	}
	key := lockKey(name)
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, dbErr(ctx, err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	s.locksMu.Lock()
	if s.locks == nil {
		s.locks = map[*pgxpool.Conn]bool{}
	}
	s.locks[conn] = true
	s.locksMu.Unlock()
	return func() {
		s.locksMu.Lock()
		held := s.locks[conn]
		delete(s.locks, conn)
		s.locksMu.Unlock()
		if !held {
			return // released already (unlock called twice, or Close)
		}
		uctx, cancel := context.WithTimeout(context.Background(), min(s.cfg.Timeout, 2*time.Second))
		defer cancel()
		var released bool
		if err := conn.QueryRow(uctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&released); err != nil || !released {
			// The session may still hold the lock: end it, which releases
			// it, rather than return a locked connection to the pool.
			conn.Conn().Close(uctx)
		}
		conn.Release()
	}, true, nil
}

// releaseLocks ends the sessions of the locks still held, which releases
// them, so that Close does not wait for their connections.
func (s *Store) releaseLocks() {
	s.locksMu.Lock()
	held := s.locks
	s.locks = nil
	s.locksMu.Unlock()
	for conn := range held {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Conn().Close(ctx)
		cancel()
		conn.Release()
	}
}
