package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
