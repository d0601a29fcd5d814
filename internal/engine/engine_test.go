package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/dirlock"
)

// One engine per process: the tests of this package share it.
var shared *Engine

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "engine-test-")
	if err != nil {
		panic(err)
	}
	shared, err = Open(dir, os.Getenv("IKD_CHDB_LIB"))
	if err != nil {
		panic(err)
	}
	code := m.Run()
	shared.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

func query(t *testing.T, req Request) string {
	t.Helper()
	res, err := shared.Query(req)
	if err != nil {
		t.Fatalf("%s: %v", req.SQL, err)
	}
	return string(res.Data)
}

func TestQueryAnswersInRequestedFormat(t *testing.T) {
	if got := query(t, Request{SQL: "SELECT 1, 'a'"}); got != "1\ta\n" {
		t.Errorf("TabSeparated: got %q", got)
	}
	if got := query(t, Request{SQL: "SELECT 1 AS x", Format: "JSONEachRow"}); got != "{\"x\":1}\n" {
		t.Errorf("JSONEachRow: got %q", got)
	}
}

func TestQueryParametersAreBoundByTheEngine(t *testing.T) {
	got := query(t, Request{SQL: "SELECT {n:UInt8} + 1, {s:String}", Params: map[string]string{"n": "41", "s": "it's"}})
	if got != "42\tit\\'s\n" {
		t.Errorf("got %q", got)
	}
}

func TestSettingsApplyToOneStatementOnly(t *testing.T) {
	got := query(t, Request{SQL: "SELECT getSetting('max_block_size')", Settings: map[string]string{"max_block_size": "1234"}})
	if got != "1234\n" {
		t.Errorf("with setting: got %q", got)
	}
	if got := query(t, Request{SQL: "SELECT getSetting('max_block_size')"}); got == "1234\n" {
		t.Errorf("setting leaked into the next statement")
	}
}

func TestUnknownSettingIsAnError(t *testing.T) {
	_, err := shared.Query(Request{SQL: "SELECT 1", Settings: map[string]string{"no_such_setting": "1"}})
	var ee *Error
	if !errors.As(err, &ee) || ee.Code != 115 {
		t.Fatalf("want code 115, got %v", err)
	}
}

func TestDatabaseAppliesToOneStatement(t *testing.T) {
	query(t, Request{SQL: "CREATE DATABASE IF NOT EXISTS other"})
	if got := query(t, Request{SQL: "SELECT currentDatabase()", Database: "other"}); got != "other\n" {
		t.Errorf("got %q", got)
	}
	if got := query(t, Request{SQL: "SELECT currentDatabase()"}); got != "default\n" {
		t.Errorf("got %q", got)
	}
}

func TestErrorsCarryClickHouseCode(t *testing.T) {
	_, err := shared.Query(Request{SQL: "SELECT * FROM no_such_table"})
	var ee *Error
	if !errors.As(err, &ee) {
		t.Fatalf("want *Error, got %T %v", err, err)
	}
	if ee.Code != 60 || !strings.HasPrefix(ee.Message, "Code: 60.") {
		t.Errorf("got code %d message %q", ee.Code, ee.Message)
	}
}

func TestSecondOpenInOneProcessIsRefused(t *testing.T) {
	_, err := Open(t.TempDir(), os.Getenv("IKD_CHDB_LIB"))
	if err == nil || !strings.Contains(err.Error(), "already open") {
		t.Fatalf("want refusal, got %v", err)
	}
}

func TestMissingLibrarySaysHowToFetchIt(t *testing.T) {
	err := VerifyLibrary(filepath.Join(t.TempDir(), "libchdb.so"))
	if !errors.Is(err, ErrLibrary) || !strings.Contains(err.Error(), "make deps") {
		t.Fatalf("got %v", err)
	}
}

func TestTamperedLibraryIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "libchdb.so")
	if err := os.WriteFile(path, []byte("not an engine"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := VerifyLibrary(path)
	if !errors.Is(err, ErrLibrary) || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("got %v", err)
	}
}

func TestDataDirectoryInUseIsRefused(t *testing.T) {
	// The engine allows one Open per process, so a directory held by this
	// process's engine stands for one held by another process.
	_, err := dirlock.Acquire(shared.Dir())
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("got %v", err)
	}
}

func connect(t *testing.T) *Conn {
	t.Helper()
	c, err := shared.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func on(t *testing.T, c *Conn, sql string) string {
	t.Helper()
	res, err := c.Query(Request{SQL: sql})
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return string(res.Data)
}

func TestWhatASessionSetsStaysInIt(t *testing.T) {
	a, b := connect(t), connect(t)
	on(t, a, "CREATE DATABASE IF NOT EXISTS session_db")
	on(t, a, "SET max_block_size = 777")
	on(t, a, "USE session_db")
	on(t, a, "CREATE TEMPORARY TABLE scratch (x UInt8)")
	on(t, a, "INSERT INTO scratch VALUES (1)")
	on(t, a, "SET readonly = 1")
	if got := on(t, a, "SELECT getSetting('max_block_size'), currentDatabase(), (SELECT count() FROM scratch), getSetting('readonly')"); got != "777\tsession_db\t1\t1\n" {
		t.Fatalf("session a lost its own state: %q", got)
	}
	if got := on(t, b, "SELECT getSetting('max_block_size') != 777, currentDatabase(), getSetting('readonly')"); got != "1\tdefault\t0\n" {
		t.Fatalf("session b sees a's state: %q", got)
	}
	if _, err := b.Query(Request{SQL: "SELECT * FROM scratch"}); err == nil {
		t.Fatal("session b sees a's temporary table")
	}
	if got := query(t, Request{SQL: "SELECT getSetting('readonly')"}); got != "0\n" {
		t.Fatalf("a one-shot statement sees a's readonly: %q", got)
	}
}

func TestConnPutsBackTheSettingsAndDatabaseOfOneStatement(t *testing.T) {
	c := connect(t)
	on(t, c, "CREATE DATABASE IF NOT EXISTS other")
	on(t, c, "SET max_block_size = 4321")
	res, err := c.Query(Request{SQL: "SELECT getSetting('max_block_size'), currentDatabase()", Database: "other", Settings: map[string]string{"max_block_size": "99"}})
	if err != nil || string(res.Data) != "99\tother\n" {
		t.Fatalf("statement: %q %v", res.Data, err)
	}
	if got := on(t, c, "SELECT getSetting('max_block_size'), currentDatabase()"); got != "4321\tdefault\n" {
		t.Fatalf("session not put back: %q", got)
	}
	if c.Broken() {
		t.Fatal("session marked broken")
	}
}

func TestConnectionsRunConcurrently(t *testing.T) {
	slow, quick := connect(t), connect(t)
	done := make(chan error, 1)
	go func() {
		_, err := slow.Query(Request{SQL: "SELECT sleepEachRow(1) FROM numbers(4) SETTINGS max_block_size = 1, function_sleep_max_microseconds_per_block = 0"})
		done <- err
	}()
	// Wait until the slow statement runs, then ask another connection.
	deadline := time.Now().Add(20 * time.Second)
	const running = "SELECT count() FROM system.processes WHERE position(query, 'sleepEachRow') > 0 AND position(query, 'system.processes') = 0"
	for on(t, quick, running) != "1\n" {
		select {
		case err := <-done:
			t.Fatalf("the slow statement ended early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow statement never showed up in system.processes")
		}
	}
	if got := on(t, quick, "SELECT 42"); got != "42\n" {
		t.Fatalf("got %q", got)
	}
	select {
	case err := <-done:
		t.Fatalf("the slow statement ended before the quick one ran (%v): statements were serialized", err)
	default:
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
