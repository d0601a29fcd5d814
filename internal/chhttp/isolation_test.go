package chhttp

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// front is one server kept across requests, as clients see it.
func front(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.TempDir = t.TempDir()
	if cfg.UserFiles == "" {
		cfg.UserFiles = filepath.Join(t.TempDir(), "user_files")
	}
	s, err := newServer(eng, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.sessions.closeAll(); s.closeParsers() })
	return s
}

// ask sends sql as a POST body with the given URL parameters.
func ask(t *testing.T, s *Server, params, sql string) (int, string, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("POST", "/?"+params, strings.NewReader(sql)))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, rec.Result().Header.Get("X-ClickHouse-Exception-Code"), string(body)
}

func mustAsk(t *testing.T, s *Server, params, sql string) string {
	t.Helper()
	status, _, body := ask(t, s, params, sql)
	if status != 200 {
		t.Fatalf("%s [%s]: %d %s", sql, params, status, body)
	}
	return body
}

func TestReadonlyRequestDoesNotMakeTheWarehouseReadonly(t *testing.T) {
	s := front(t, Config{})
	if got := mustAsk(t, s, "readonly=1", "SELECT 1"); got != "1\n" {
		t.Fatalf("got %q", got)
	}
	if status, code, body := ask(t, s, "readonly=1", "CREATE TABLE default.ro_probe (a UInt8) ENGINE = Memory"); status != 403 || code != "164" {
		t.Fatalf("a readonly=1 request wrote: %d %s %s", status, code, body)
	}
	mustAsk(t, s, "", "CREATE TABLE IF NOT EXISTS default.ro_after (a UInt8) ENGINE = Memory")
	mustAsk(t, s, "", "INSERT INTO default.ro_after VALUES (1)")
	if got := mustAsk(t, s, "", "SELECT getSetting('readonly')"); got != "0\n" {
		t.Fatalf("readonly reached the next request: %q", got)
	}
}

// Grafana's ClickHouse datasource, set to enforce read-only, sends readonly=1
// with each query and checks that a SETTINGS clause cannot override what it
// pinned: ClickHouse answers READONLY (164), and so must the front.
func TestReadonlyRequestCannotChangeSettingsInItsStatement(t *testing.T) {
	s := front(t, Config{})
	for _, sql := range []string{
		"SELECT 1 SETTINGS max_execution_time = 3600",
		"SELECT * FROM (SELECT 1 SETTINGS max_threads = 1)",
		"EXPLAIN SELECT 1 SETTINGS max_threads = 1",
	} {
		if status, code, body := ask(t, s, "readonly=1&max_execution_time=5", sql); status != 403 || code != "164" {
			t.Errorf("%s at readonly=1: %d %s %s, want READONLY (164)", sql, status, code, body)
		}
	}
	if got := mustAsk(t, s, "readonly=2", "SELECT getSetting('max_threads') SETTINGS max_threads = 1"); got != "1\n" {
		t.Errorf("readonly=2 may change settings, got %q", got)
	}
	if got := mustAsk(t, s, "readonly=1&max_execution_time=5", "SELECT getSetting('max_execution_time')"); got != "5\n" {
		t.Errorf("the request's own settings at readonly=1: got %q, want 5", got)
	}
}

func TestSetUseAndTemporaryTablesStayInTheirSession(t *testing.T) {
	s := front(t, Config{})
	mustAsk(t, s, "", "CREATE DATABASE IF NOT EXISTS sess_db")
	a := "session_id=alpha"
	mustAsk(t, s, a, "SET max_block_size = 777")
	mustAsk(t, s, a, "USE sess_db")
	mustAsk(t, s, a, "CREATE TEMPORARY TABLE scratch (x UInt8)")
	mustAsk(t, s, a, "INSERT INTO scratch VALUES (7)")
	if got := mustAsk(t, s, a, "SELECT getSetting('max_block_size'), currentDatabase(), (SELECT sum(x) FROM scratch)"); got != "777\tsess_db\t7\n" {
		t.Fatalf("session alpha lost its state: %q", got)
	}
	for _, other := range []string{"", "session_id=beta"} {
		if got := mustAsk(t, s, other, "SELECT getSetting('max_block_size') = 777, currentDatabase()"); got != "0\tdefault\n" {
			t.Errorf("[%s] sees alpha's SET or USE: %q", other, got)
		}
		if status, _, body := ask(t, s, other, "SELECT * FROM scratch"); status == 200 {
			t.Errorf("[%s] sees alpha's temporary table: %q", other, body)
		}
	}
	// A plain statement with SET in it leaks nowhere either.
	mustAsk(t, s, "", "SET max_block_size = 555")
	if got := mustAsk(t, s, "", "SELECT getSetting('max_block_size') = 555"); got != "0\n" {
		t.Errorf("a sessionless SET reached the next request")
	}
	// Per-request settings in a session are the request's only.
	if got := mustAsk(t, s, a+"&max_block_size=99", "SELECT getSetting('max_block_size')"); got != "99\n" {
		t.Errorf("per-request setting: %q", got)
	}
	if got := mustAsk(t, s, a, "SELECT getSetting('max_block_size')"); got != "777\n" {
		t.Errorf("per-request setting stayed in the session: %q", got)
	}
}

func TestSessionOfAnotherUserIsNotReached(t *testing.T) {
	s := front(t, Config{User: "admin", Password: "a", AnalystUser: "analyst", AnalystPassword: "b"})
	mustAsk(t, s, "user=admin&password=a&session_id=shared", "CREATE TEMPORARY TABLE mine (x UInt8)")
	if status, _, body := ask(t, s, "user=analyst&password=b&session_id=shared", "SELECT * FROM mine"); status == 200 {
		t.Fatalf("the analyst reached the admin's session: %q", body)
	}
}

func TestSessionInUseIsLockedAndExpiredSessionIsGone(t *testing.T) {
	s := front(t, Config{})
	now := time.Now()
	s.sessions.now = func() time.Time { return now }
	mustAsk(t, s, "session_id=lock&session_timeout=5", "SELECT 1")
	held, err := s.sessions.acquire(sessionKey("default", "lock"), "lock", 5*time.Second, true)
	if err != nil {
		t.Fatal(err)
	}
	if status, code, _ := ask(t, s, "session_id=lock", "SELECT 1"); code != "373" || status != 500 {
		t.Errorf("concurrent use of a session: %d %s, want SESSION_IS_LOCKED", status, code)
	}
	s.sessions.release(sessionKey("default", "lock"), held)
	mustAsk(t, s, "session_id=lock&session_check=1&session_timeout=5", "SELECT 1")
	now = now.Add(6 * time.Second)
	if _, code, _ := ask(t, s, "session_id=lock&session_check=1", "SELECT 1"); code != "372" {
		t.Errorf("expired session: code %s, want SESSION_NOT_FOUND", code)
	}
	if _, code, _ := ask(t, s, "session_id=x&session_timeout=7200", "SELECT 1"); code != "36" {
		t.Errorf("session_timeout above the maximum: code %s", code)
	}
}

func TestAnalystUserOnlyReads(t *testing.T) {
	s := front(t, Config{User: "admin", Password: "a", AnalystUser: "analyst", AnalystPassword: "b"})
	an := "user=analyst&password=b"
	if got := mustAsk(t, s, an+"&max_threads=1", "SELECT 1"); got != "1\n" {
		t.Fatalf("got %q", got)
	}
	mustAsk(t, s, an+"&session_id=an", "SET max_threads = 1")
	for _, tc := range []struct{ params, sql string }{
		{an, "CREATE TABLE default.analyst_probe (a UInt8) ENGINE = Memory"},
		{an, "INSERT INTO default.ro_after VALUES (2)"},
		{an + "&readonly=0", "SELECT 1"},
		{an, "DROP TABLE IF EXISTS default.ro_after"},
	} {
		if status, code, body := ask(t, s, tc.params, tc.sql); status != 403 || code != "164" {
			t.Errorf("%s [%s]: %d %s %s", tc.sql, tc.params, status, code, body)
		}
	}
	mustAsk(t, s, "user=admin&password=a", "CREATE TABLE IF NOT EXISTS default.admin_made (a UInt8) ENGINE = Memory")
}

func TestHostFilesAndTheNetworkAreOutOfReach(t *testing.T) {
	target := filepath.Join(t.TempDir(), "written.csv")
	s := front(t, Config{})
	for _, tc := range []struct {
		sql, code string
	}{
		{"SELECT * FROM file('/proc/self/environ', 'LineAsString')", "497"},
		{"SELECT file('/proc/self/environ')", "497"},
		{"SELECT * FROM file('../../../../proc/self/environ', 'LineAsString')", "497"},
		{"SELECT * FROM file('{..,x}/{..,x}/etc/passwd', 'LineAsString')", "497"},
		{"SELECT * FROM FILE('/etc/passwd', 'LineAsString')", "497"},
		{"SELECT * FROM `/proc/self/environ`", "497"},
		{"SELECT * FROM '/etc/passwd'", "497"},
		{"SELECT * FROM `server.go`", "497"},
		{"SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')", "497"},
		{"SELECT * FROM URL('http://127.0.0.1:1/', 'LineAsString')", "497"},
		{"SELECT * FROM numbers(1) WHERE number IN (SELECT * FROM remote('127.0.0.1:1', system.one))", "497"},
		{"SELECT * FROM remoteSecure('127.0.0.1:1', system.one)", "497"},
		{"SELECT * FROM s3('http://127.0.0.1:1/b/k', 'CSV')", "497"},
		{"SELECT * FROM postgresql('127.0.0.1:1', 'd', 't', 'u', 'p')", "497"},
		{"SELECT * FROM mysql('127.0.0.1:1', 'd', 't', 'u', 'p')", "497"},
		{"SELECT * FROM executable('x.sh', 'CSV', 'a String')", "497"},
		{"SELECT aiGenerate('hello')", "497"},
		{"SELECT 1 INTO OUTFILE '" + target + "'", "497"},
		{"INSERT INTO FUNCTION file('" + target + "', 'CSV') SELECT 1", "497"},
		{"INSERT INTO FUNCTION file('inside.csv', 'CSV') SELECT 1", "497"},
		{"INSERT INTO default.ro_after FROM INFILE '/etc/hostname' FORMAT LineAsString", "497"},
		{"CREATE TABLE default.u (a String) ENGINE = URL('http://127.0.0.1:1/', CSV)", "497"},
		{"CREATE TABLE default.f (a String) ENGINE = File(LineAsString, '/etc/passwd')", "497"},
		{"CREATE TABLE default.s AS s3('http://127.0.0.1:1/b/k', 'CSV')", "497"},
		{"CREATE DATABASE fs ENGINE = Filesystem('/')", "497"},
		{"CREATE DICTIONARY default.d (a UInt64) PRIMARY KEY a SOURCE(HTTP(url 'http://127.0.0.1:1/' format 'CSV')) LAYOUT(FLAT()) LIFETIME(0)", "497"},
		{"CREATE TABLE default.dk (a UInt8) ENGINE = MergeTree ORDER BY a SETTINGS disk = disk(type = local, path = '/tmp/ikd-disk/')", "452"},
		{"ATTACH TABLE default.at FROM '/etc' (a UInt8) ENGINE = MergeTree ORDER BY a", "497"},
		{"SELECT 1 SETTINGS dialect = 'prql'", "452"},
		{"SET format_schema = '/etc/passwd:M'", "452"},
		{"SELECT 1; SELECT file('/etc/passwd')", "62"},
		{"SYSTEM SHUTDOWN", "497"},
		{"BACKUP TABLE default.ro_after TO File('/tmp/ikd-backup')", "497"},
	} {
		status, code, body := ask(t, s, "", tc.sql)
		if code != tc.code || status == 200 {
			t.Errorf("%s: %d code %s, want %s: %s", tc.sql, status, code, tc.code, body)
		}
	}
	mustAsk(t, s, "", "CREATE OR REPLACE TABLE default.smuggled (s String) ENGINE = Memory")
	for _, data := range []string{"(file('/etc/hostname'))", "(toString((SELECT count() FROM url('http://127.0.0.1:1/', 'LineAsString'))))"} {
		if status, _, body := ask(t, s, "query="+url.QueryEscape("INSERT INTO default.smuggled VALUES"), data); status == 200 {
			t.Errorf("Values data %s was evaluated: %s", data, body)
		}
	}
	if got := mustAsk(t, s, "", "SELECT count() FROM default.smuggled"); got != "0\n" {
		t.Errorf("smuggled rows: %s", got)
	}
	// Harmless expressions in Values still work, as on a server.
	mustAsk(t, s, "query="+url.QueryEscape("INSERT INTO default.smuggled VALUES"), "(concat('a', toString(1 + 1)))")
	if got := mustAsk(t, s, "", "SELECT s FROM default.smuggled"); got != "a2\n" {
		t.Errorf("smuggled rows: %s", got)
	}
	if _, err := os.Stat(target); err == nil {
		t.Errorf("a file was written at %s", target)
	}
	if status, code, _ := ask(t, s, "dialect=prql", "SELECT 1"); status == 200 || code != "452" {
		t.Errorf("dialect as a parameter: %d %s", status, code)
	}
}

func TestFileReadsInsideUserFiles(t *testing.T) {
	s := front(t, Config{})
	if err := os.WriteFile(filepath.Join(s.cfg.UserFiles, "targets.csv"), []byte("3171,42\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := mustAsk(t, s, "", "SELECT c2 FROM file('targets.csv', 'CSV')"); got != "42\n" {
		t.Fatalf("got %q", got)
	}
	if got := mustAsk(t, s, "", "SELECT count() FROM file('*.csv', 'CSV')"); got != "1\n" {
		t.Fatalf("glob: got %q", got)
	}
}

// listen serves s on a loopback port for real clients.
func listen(t *testing.T, cfg Config) string {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	cfg.TempDir = t.TempDir()
	s, err := Listen(eng, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s.Addr()
}

func TestClickHouseGoKeepsItsSession(t *testing.T) {
	addr := listen(t, Config{})
	open := func(settings clickhouse.Settings) clickhouse.Conn {
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Protocol: clickhouse.HTTP, Settings: settings})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	ctx := context.Background()
	a := open(clickhouse.Settings{"session_id": "go-client"})
	if err := a.Exec(ctx, "CREATE TEMPORARY TABLE go_scratch (x UInt32)"); err != nil {
		t.Fatal(err)
	}
	if err := a.Exec(ctx, "INSERT INTO go_scratch VALUES (5)"); err != nil {
		t.Fatal(err)
	}
	var n uint64
	if err := a.QueryRow(ctx, "SELECT sum(x) FROM go_scratch").Scan(&n); err != nil || n != 5 {
		t.Fatalf("the session lost its temporary table: %d %v", n, err)
	}
	b := open(nil)
	if err := b.QueryRow(ctx, "SELECT sum(x) FROM go_scratch").Scan(&n); err == nil {
		t.Fatal("a client without the session sees its temporary table")
	}
	// curl-style: the session in the URL.
	resp, err := http.Post("http://"+addr+"/?session_id=go-client", "text/plain", strings.NewReader("SELECT sum(x) FROM go_scratch"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "5\n" {
		t.Fatalf("curl in the same session: %q", body)
	}
}

func TestInsertsKeepLandingWhileASlowQueryRuns(t *testing.T) {
	addr := listen(t, Config{})
	post := func(params, sql string) (string, error) {
		resp, err := http.Post("http://"+addr+"/?"+params, "text/plain", strings.NewReader(sql))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("%d %s", resp.StatusCode, b)
		}
		return string(b), nil
	}
	if _, err := post("", "CREATE TABLE IF NOT EXISTS default.fresh (n UInt32) ENGINE = MergeTree ORDER BY n"); err != nil {
		t.Fatal(err)
	}
	slowDone := make(chan error, 1)
	go func() {
		_, err := post("max_block_size=1&function_sleep_max_microseconds_per_block=0", "SELECT sleepEachRow(1) FROM numbers(5)")
		slowDone <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := post("", "SELECT count() FROM system.processes WHERE position(query, 'sleepEachRow') > 0 AND position(query, 'system.processes') = 0")
		if err != nil {
			t.Fatal(err)
		}
		if got == "1\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow query never started")
		}
	}
	var worst time.Duration
	for i := range 10 {
		start := time.Now()
		if _, err := post("query="+url.QueryEscape("INSERT INTO default.fresh FORMAT CSV"), fmt.Sprintf("%d\n", i)); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(start))
	}
	select {
	case err := <-slowDone:
		t.Fatalf("the slow query ended (%v) before the inserts: they waited for it", err)
	default:
	}
	t.Logf("10 inserts landed while the slow query ran; slowest insert took %v", worst)
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
}

func TestBodiesAreCappedAsSentAndDecompressed(t *testing.T) {
	s := front(t, Config{MaxBodyBytes: 1000, MaxDecompressedBytes: 5000})
	mustAsk(t, s, "", "CREATE TABLE IF NOT EXISTS default.capped (s String) ENGINE = Memory")
	insert := "query=" + url.QueryEscape("INSERT INTO default.capped FORMAT LineAsString")
	if status, _, body := ask(t, s, insert, strings.Repeat("x", 2000)); status == 200 {
		t.Errorf("a body over MaxBodyBytes was taken: %s", body)
	}
	var zipped strings.Builder
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write([]byte(strings.Repeat("y", 50000)))
	_ = zw.Close()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/?"+insert, strings.NewReader(zipped.String()))
	req.Header.Set("Content-Encoding", "gzip")
	s.ServeHTTP(rec, req)
	if rec.Code == 200 || !strings.Contains(rec.Body.String(), "decompressed") {
		t.Errorf("a body over MaxDecompressedBytes once decompressed was taken: %d %s", rec.Code, rec.Body.String())
	}
	if got := mustAsk(t, s, "", "SELECT count() FROM default.capped"); got != "0\n" {
		t.Errorf("rows landed: %s", got)
	}
}
