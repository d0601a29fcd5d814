package warehouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/ikd-pipeline/ikd/internal/retry"
)

// The migration lock lives in the warehouse, so that it works wherever the
// programs run and on any ClickHouse, server or embedded: ClickHouse has no
// row locks, but an insert is visible to every later read. A program claims
// the lock by inserting a claim, then reads the live claims: it holds the
// lock when its claim is strictly the earliest. Of two programs that claim at
// once, the second to insert sees the first's claim (inserted before the
// first read) and one claimed no later than it, so at most one holds. A
// program that loses withdraws its claim and tries again; a claim that is
// never withdrawn (the program died) lapses after lockLease.
const lockTable = `CREATE TABLE IF NOT EXISTS ikd.schema_lock
	(owner String, released UInt8 DEFAULT 0, claimed_at DateTime64(6, 'UTC') DEFAULT now64(6))
	ENGINE = MergeTree ORDER BY claimed_at TTL toDateTime(claimed_at) + INTERVAL 1 DAY`

// lockLease is how long a claim holds; longer than any migration runs, short
// enough that a program that died holding the lock delays the next start by
// no more.
const lockLease = 2 * time.Minute

// lockPolicy paces the wait for another program's lock: quick at first (a
// migration run that finds nothing to apply takes milliseconds), then once a
// second, until the caller's context ends or a dead holder's claim lapses.
var lockPolicy = retry.Policy{Initial: 20 * time.Millisecond, Max: time.Second, Jitter: 0.5}

// errLockHeld is the attempt's outcome while another program holds the
// lock: the one failure worth waiting out.
var errLockHeld = errors.New("migrate: the schema migration lock is held by another program")

// acquireLock waits for the migration lock and returns its release.
func acquireLock(ctx context.Context, conn driver.Conn, logger *slog.Logger) (release func(), err error) {
	var owner, holder string
	attempt := func() error {
		owner = lockOwner()
		if err := conn.Exec(ctx, "INSERT INTO ikd.schema_lock (owner) VALUES (?)", owner); err != nil {
			return fmt.Errorf("migrate: claim the lock: %w", err)
		}
		current, err := lockHolder(ctx, conn)
		if err == nil && current == owner {
			return nil
		}
		withdraw(ctx, conn, owner, logger)
		if err != nil {
			return err
		}
		holder = current
		return errLockHeld
	}
	logged := false
	waiting := func(error, time.Duration) {
		if !logged {
			logger.Info("waiting for another program to finish the schema migration", "holder", holder)
			logged = true
		}
	}
	err = retry.Do(ctx, lockPolicy, attempt, func(err error) bool { return errors.Is(err, errLockHeld) || quorumPending(err) }, waiting)
	switch {
	case err == nil:
		return func() { withdraw(ctx, conn, owner, logger) }, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("migrate: waiting for the lock held by %s: %w", holder, ctx.Err())
	}
	return nil, err
}

// lockHolder returns the owner of the earliest live claim, or "" when two
// claims tie for it.
func lockHolder(ctx context.Context, conn driver.Conn) (string, error) {
	rows, err := conn.Query(ctx, `SELECT owner, claimed_at FROM ikd.schema_lock
		WHERE released = 0 AND claimed_at > now64(6) - toIntervalSecond(?)
		  AND owner NOT IN (SELECT owner FROM ikd.schema_lock WHERE released = 1)
		ORDER BY claimed_at, owner LIMIT 2`, int(lockLease.Seconds()))
	if err != nil {
		return "", fmt.Errorf("migrate: read the lock: %w", err)
	}
	defer rows.Close()
	var owners []string
	var at []time.Time
	for rows.Next() {
		var o string
		var t time.Time
		if err := rows.Scan(&o, &t); err != nil {
			return "", fmt.Errorf("migrate: read the lock: %w", err)
		}
		owners, at = append(owners, o), append(at, t)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("migrate: read the lock: %w", err)
	}
	switch {
	case len(owners) == 0:
		return "", errors.New("migrate: the lock claim just inserted is not there")
	case len(owners) == 2 && at[0].Equal(at[1]):
		return "", nil
	}
	return owners[0], nil
}

// withdraw releases a claim, with the settings of ctx but not its end; a
// release that fails only delays the others until the claim lapses.
func withdraw(ctx context.Context, conn driver.Conn, owner string, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := conn.Exec(ctx, "INSERT INTO ikd.schema_lock (owner, released) VALUES (?, 1)", owner); err != nil {
		logger.Warn("cannot release the schema migration lock; it lapses by itself", "owner", owner, "lease", lockLease, "err", err)
	}
}

func lockOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), uuid.NewString())
}

// quorumPending reports a cluster's answer that another node's insert has
// not reached this replica or its quorum yet (UNSATISFIED_QUORUM,
// REPLICA_IS_NOT_IN_QUORUM): worth another try, like a held lock.
func quorumPending(err error) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && (ex.Code == 286 || ex.Code == 289)
}

// alreadyExists reports the error of a CREATE ... IF NOT EXISTS that raced
// another program's on a ClickHouse server.
func alreadyExists(err error) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && (ex.Code == 57 || ex.Code == 82)
}
