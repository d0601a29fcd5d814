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
// row locks, but an insert is visible to every read that begins after it
// returned. A program claims the lock by inserting a claim, then reads the
// live claims: it holds the lock when its claim is the only one. Of two
// programs that claim at once, the one whose insert returned second reads
// after both returned and sees both claims, so at most one holds. (Holding
// the earliest claim was not enough: a claim's time is taken when its
// insert begins, so an earlier claim could become visible after a later one
// had been read alone, and both programs held.) A program that does not hold
// withdraws its claim and tries again; a claim that is never withdrawn (the
// program died) lapses after lockLease.
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
		claims, err := liveClaims(ctx, conn)
		if err == nil && len(claims) == 1 && claims[0] == owner {
			return nil
		}
		withdraw(ctx, conn, owner, logger)
		if err != nil {
			return err
		}
		holder = claims[0]
		if holder == owner && len(claims) > 1 {
			holder = claims[1]
		}
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

// liveClaims returns the owners of the live claims, the earliest first, two
// at most: enough to tell whether a claim is the only one.
func liveClaims(ctx context.Context, conn driver.Conn) ([]string, error) {
	rows, err := conn.Query(ctx, `SELECT owner FROM ikd.schema_lock
		WHERE released = 0 AND claimed_at > now64(6) - toIntervalSecond(?)
		  AND owner NOT IN (SELECT owner FROM ikd.schema_lock WHERE released = 1)
		ORDER BY claimed_at, owner LIMIT 2`, int(lockLease.Seconds()))
	if err != nil {
		return nil, fmt.Errorf("migrate: read the lock: %w", err)
	}
	defer rows.Close()
	var owners []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, fmt.Errorf("migrate: read the lock: %w", err)
		}
		owners = append(owners, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrate: read the lock: %w", err)
	}
	if len(owners) == 0 {
		return nil, errors.New("migrate: the lock claim just inserted is not there")
	}
	return owners, nil
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
