package warehouse_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
	"github.com/ikd-pipeline/ikd/schema"
)

func TestPendingSkipsTheAppliedAndRefusesAChangedOneByName(t *testing.T) {
	shipped := []warehouse.Migration{
		{Name: "001_a.sql", SHA256: "aaa"}, {Name: "002_b.sql", SHA256: "bbb"}, {Name: "003_c.sql", SHA256: "ccc"},
	}
	cases := []struct {
		name    string
		applied map[string]string
		want    []string // names pending
		refused string   // the migration the error must name
	}{
		{name: "fresh warehouse", applied: map[string]string{}, want: []string{"001_a.sql", "002_b.sql", "003_c.sql"}},
		{name: "up to date", applied: map[string]string{"001_a.sql": "aaa", "002_b.sql": "bbb", "003_c.sql": "ccc"}},
		{name: "a new migration", applied: map[string]string{"001_a.sql": "aaa", "002_b.sql": "bbb"}, want: []string{"003_c.sql"}},
		{name: "an applied one changed", applied: map[string]string{"001_a.sql": "aaa", "002_b.sql": "old"}, refused: "002_b.sql"},
		{name: "an applied one no longer shipped", applied: map[string]string{"000_gone.sql": "x", "001_a.sql": "aaa"}, want: []string{"002_b.sql", "003_c.sql"}},
	}
	for _, c := range cases {
		pending, err := warehouse.Pending(shipped, c.applied)
		if c.refused != "" {
			if err == nil || !strings.Contains(err.Error(), c.refused) {
				t.Errorf("%s: got %v, want an error naming %s", c.name, err, c.refused)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var names []string
		for _, m := range pending {
			names = append(names, m.Name)
		}
		if !slices.Equal(names, c.want) {
			t.Errorf("%s: pending %v, want %v", c.name, names, c.want)
		}
	}
}

// withProbe is the shipped schema and extra migrations, among them one that
// is not idempotent, so that applying it twice shows.
func withProbe(t *testing.T, extra map[string]string) fs.FS {
	t.Helper()
	fsys := fstest.MapFS{}
	names, err := fs.Glob(schema.Migrations, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		data, err := fs.ReadFile(schema.Migrations, n)
		if err != nil {
			t.Fatal(err)
		}
		fsys[n] = &fstest.MapFile{Data: data}
	}
	for n, text := range extra {
		fsys[n] = &fstest.MapFile{Data: []byte(text)}
	}
	return fsys
}

const probe = `CREATE TABLE IF NOT EXISTS ikd.migrate_probe (n UInt8) ENGINE = MergeTree ORDER BY n;
INSERT INTO ikd.migrate_probe VALUES (1);
`

func migrate(ctx context.Context, conn driver.Conn, fsys fs.FS, logger *slog.Logger) error {
	ref, err := region.Load()
	if err != nil {
		return err
	}
	return warehouse.Migrate(ctx, conn, fsys, ref, logger)
}

func count(t *testing.T, conn driver.Conn, sql string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestTwoProgramsMigratingAtOnceApplyEachMigrationOnce(t *testing.T) {
	testenv.Warehouse(t) // empties the tables: every migration is pending again
	fsys := withProbe(t, map[string]string{"900_probe.sql": probe})
	conns := []driver.Conn{connect(t), connect(t), connect(t)}
	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	for i, conn := range conns {
		wg.Go(func() { errs[i] = migrate(context.Background(), conn, fsys, nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("program %d: %v", i, err)
		}
	}
	if n := count(t, conns[0], "SELECT count() FROM ikd.migrate_probe"); n != 1 {
		t.Fatalf("the probe migration ran %d times, want once", n)
	}
}

func TestAMigrationChangedAfterItWasAppliedIsRefusedByNameBeforeAnyIsApplied(t *testing.T) {
	testenv.Warehouse(t)
	conn := connect(t)
	ctx := context.Background()
	if err := migrate(ctx, conn, withProbe(t, map[string]string{"900_probe.sql": probe}), nil); err != nil {
		t.Fatal(err)
	}
	tampered := withProbe(t, map[string]string{
		"900_probe.sql": strings.Replace(probe, "VALUES (1)", "VALUES (2)", 1),
		"901_next.sql":  "INSERT INTO ikd.migrate_probe VALUES (3);\n",
	})
	err := migrate(ctx, conn, tampered, nil)
	if err == nil || !strings.Contains(err.Error(), "900_probe.sql") {
		t.Fatalf("got %v, want the changed migration refused by name", err)
	}
	if n := count(t, conn, "SELECT count() FROM ikd.migrate_probe"); n != 1 {
		t.Fatalf("the probe table has %d rows after the refusal, want the 1 of the first run", n)
	}
	// Restored, the change comes as the new migration it should be.
	fixed := withProbe(t, map[string]string{"900_probe.sql": probe, "901_next.sql": "INSERT INTO ikd.migrate_probe VALUES (3);\n"})
	if err := migrate(ctx, conn, fixed, nil); err != nil {
		t.Fatal(err)
	}
	if n := count(t, conn, "SELECT count() FROM ikd.migrate_probe"); n != 2 {
		t.Fatalf("the probe table has %d rows, want 2", n)
	}
}

func TestMigrateWaitsForAnotherProgramsLockAndNotForALapsedOne(t *testing.T) {
	testenv.Warehouse(t)
	conn := connect(t)
	ctx := context.Background()
	if err := migrate(ctx, conn, schema.Migrations, nil); err != nil {
		t.Fatal(err)
	}
	// A program that died holding the lock three minutes ago does not block.
	exec(t, conn, "INSERT INTO ikd.schema_lock (owner, claimed_at) VALUES ('dead', now64(6) - INTERVAL 3 MINUTE)")
	if err := migrate(ctx, conn, schema.Migrations, nil); err != nil {
		t.Fatal(err)
	}
	// One that holds it now does, until it releases it.
	exec(t, conn, "INSERT INTO ikd.schema_lock (owner, claimed_at) VALUES ('other', now64(6) - INTERVAL 1 SECOND)")
	logs := &testenv.LogBuffer{}
	done := make(chan error, 1)
	go func() { done <- migrate(ctx, conn, schema.Migrations, slog.New(slog.NewTextHandler(logs, nil))) }()
	testenv.Eventually(t, time.Minute, func() error {
		if !strings.Contains(logs.String(), "holder=other") {
			return fmt.Errorf("migrate has not yet met the other program's lock; logged %q", logs.String())
		}
		return nil
	})
	select {
	case err := <-done:
		t.Fatalf("migrate finished (%v) while another program held the lock", err)
	default:
	}
	exec(t, conn, "INSERT INTO ikd.schema_lock (owner, released) VALUES ('other', 1)")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestMigrateWaitingForAHeldLockEndsWithItsContextNamingTheHolder(t *testing.T) {
	testenv.Warehouse(t)
	conn := connect(t)
	if err := migrate(context.Background(), conn, schema.Migrations, nil); err != nil {
		t.Fatal(err)
	}
	exec(t, conn, "INSERT INTO ikd.schema_lock (owner, claimed_at) VALUES ('keeper', now64(6) - INTERVAL 1 SECOND)")
	t.Cleanup(func() { exec(t, conn, "INSERT INTO ikd.schema_lock (owner, released) VALUES ('keeper', 1)") })
	logs := &testenv.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- migrate(ctx, conn, schema.Migrations, slog.New(slog.NewTextHandler(logs, nil))) }()
	testenv.Eventually(t, time.Minute, func() error {
		if !strings.Contains(logs.String(), "holder=keeper") {
			return fmt.Errorf("migrate has not yet met the lock; logged %q", logs.String())
		}
		return nil
	})
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "keeper") {
		t.Fatalf("got %v, want the context's end naming the holder", err)
	}
}
