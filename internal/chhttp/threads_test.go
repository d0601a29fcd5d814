package chhttp

import (
	"strings"
	"testing"
)

func TestReadsWithoutTheirOwnMaxThreadsGetTheCap(t *testing.T) {
	s := front(t, Config{ReadMaxThreads: 7, User: "admin", Password: "a", AnalystUser: "analyst", AnalystPassword: "b"})
	admin, an := "user=admin&password=a", "user=analyst&password=b"
	for _, tc := range []struct{ who, params, sql, want string }{
		{"admin", admin, "SELECT getSetting('max_threads')", "7\n"},
		{"admin asking more", admin + "&max_threads=9", "SELECT getSetting('max_threads')", "9\n"},
		{"admin SETTINGS", admin, "SELECT getSetting('max_threads') SETTINGS max_threads = 9", "9\n"},
		{"analyst", an, "SELECT getSetting('max_threads')", "7\n"},
		{"analyst asking less", an + "&max_threads=2", "SELECT getSetting('max_threads')", "2\n"},
		{"analyst SETTINGS less", an, "SELECT getSetting('max_threads') SETTINGS max_threads = 3", "3\n"},
	} {
		if got := mustAsk(t, s, tc.params, tc.sql); got != tc.want {
			t.Errorf("%s: max_threads %q, want %q", tc.who, got, tc.want)
		}
	}
}

func TestAnalystCannotRaiseMaxThreadsAboveTheCap(t *testing.T) {
	s := front(t, Config{ReadMaxThreads: 7, User: "admin", Password: "a", AnalystUser: "analyst", AnalystPassword: "b"})
	an := "user=analyst&password=b"
	for _, tc := range []struct{ params, sql string }{
		{an + "&max_threads=8", "SELECT getSetting('max_threads')"},
		{an + "&max_threads=0", "SELECT getSetting('max_threads')"},
		{an + "&max_threads=auto", "SELECT getSetting('max_threads')"},
		{an, "SELECT getSetting('max_threads') SETTINGS max_threads = 64"},
		{an, "SELECT getSetting('max_threads') SETTINGS max_threads = 'auto'"},
		{an + "&session_id=greedy", "SET max_threads = 8"},
	} {
		if status, code, body := ask(t, s, tc.params, tc.sql); status == 200 || code != "452" {
			t.Errorf("%s [%s]: %d code %s, want 452: %s", tc.sql, tc.params, status, code, body)
		}
	}
}

func TestInsertsKeepTheEnginesThreads(t *testing.T) {
	s := front(t, Config{ReadMaxThreads: 7})
	mustAsk(t, s, "", "CREATE TABLE IF NOT EXISTS default.insert_threads (v String) ENGINE = Memory")
	mustAsk(t, s, "", "INSERT INTO default.insert_threads SELECT toString(getSetting('max_threads'))")
	if got := mustAsk(t, s, "", "SELECT v FROM default.insert_threads"); strings.TrimSpace(got) == "7" {
		t.Fatalf("an INSERT ran with the readers' cap: max_threads %q", got)
	}
}

func TestReadLimitOfThreads(t *testing.T) {
	for _, tc := range []struct {
		name, kind, formatted string
		settings              map[string]string
		limit                 int
		analyst, refused      bool
		want                  string // max_threads afterwards; "" for none
	}{
		{"read gets the cap", "SelectWithUnionQuery", "SELECT 1", map[string]string{}, 2, false, false, "2"},
		{"show gets the cap", "ShowTables", "SHOW TABLES", map[string]string{}, 2, false, false, "2"},
		{"insert keeps the default", "InsertQuery", "INSERT INTO t SELECT 1", map[string]string{}, 2, false, false, ""},
		{"own parameter wins", "SelectWithUnionQuery", "SELECT 1", map[string]string{"max_threads": "8"}, 2, false, false, "8"},
		{"own SETTINGS wins", "SelectWithUnionQuery", "SELECT 1 SETTINGS max_threads = 8", map[string]string{}, 2, false, false, ""},
		{"analyst below the cap", "SelectWithUnionQuery", "SELECT 1 SETTINGS max_threads = 1", map[string]string{}, 2, true, false, ""},
		{"analyst parameter above", "SelectWithUnionQuery", "SELECT 1", map[string]string{"max_threads": "3"}, 2, true, true, "3"},
		{"analyst SET above", "Set", "SET max_threads = 3", map[string]string{}, 2, true, true, ""},
		{"analyst SET expression", "Set", "SET max_threads = 1 + 5", map[string]string{}, 2, true, true, ""},
		{"analyst SET then more", "Set", "SET max_threads = 1, max_block_size = 10", map[string]string{}, 2, true, false, ""},
		{"analyst auto", "SelectWithUnionQuery", "SELECT 1 SETTINGS max_threads = 'auto'", map[string]string{}, 2, true, true, ""},
		{"quoted name is no setting", "SelectWithUnionQuery", "SELECT getSetting('max_threads')", map[string]string{}, 2, true, false, "2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := threadsLimit(tc.limit).apply(tc.settings, tc.kind, tc.formatted, tc.analyst)
			if (err != nil) != tc.refused {
				t.Fatalf("err %v, refused want %v", err, tc.refused)
			}
			if got := tc.settings["max_threads"]; got != tc.want {
				t.Errorf("max_threads %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadLimitOfNice(t *testing.T) {
	for _, tc := range []struct {
		name, kind, formatted string
		settings              map[string]string
		analyst, refused      bool
		want                  string // os_thread_priority afterwards; "" for none
	}{
		{"read yields", "SelectWithUnionQuery", "SELECT 1", map[string]string{}, false, false, "10"},
		{"insert does not", "InsertQuery", "INSERT INTO t SELECT 1", map[string]string{}, false, false, ""},
		{"a program may ask for its own", "SelectWithUnionQuery", "SELECT 1", map[string]string{"os_thread_priority": "0"}, false, false, "0"},
		{"analyst yields more", "SelectWithUnionQuery", "SELECT 1 SETTINGS os_thread_priority = 19", map[string]string{}, true, false, ""},
		{"analyst parameter ahead of inserts", "SelectWithUnionQuery", "SELECT 1", map[string]string{"os_thread_priority": "0"}, true, true, "0"},
		{"analyst SETTINGS ahead of inserts", "SelectWithUnionQuery", "SELECT 1 SETTINGS os_thread_priority = -5", map[string]string{}, true, true, ""},
		{"analyst SET ahead of inserts", "Set", "SET os_thread_priority = 9", map[string]string{}, true, true, ""},
		{"analyst beyond nice's range", "SelectWithUnionQuery", "SELECT 1 SETTINGS os_thread_priority = 20", map[string]string{}, true, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := niceLimit(10).apply(tc.settings, tc.kind, tc.formatted, tc.analyst)
			if (err != nil) != tc.refused {
				t.Fatalf("err %v, refused want %v", err, tc.refused)
			}
			if got := tc.settings["os_thread_priority"]; got != tc.want {
				t.Errorf("os_thread_priority %q, want %q", got, tc.want)
			}
		})
	}
}

// Reads run at the front's nice unless they choose; the engine takes the
// setting (an unknown or refused one would fail the read).
func TestReadsYieldTheCPUsToInserts(t *testing.T) {
	s := front(t, Config{ReadNice: 12})
	if got := mustAsk(t, s, "", "SELECT getSetting('os_thread_priority')"); got != "12\n" {
		t.Errorf("a read runs at os_thread_priority %q, want 12", got)
	}
	mustAsk(t, s, "", "CREATE OR REPLACE TABLE default.insert_nice (v String) ENGINE = Memory")
	mustAsk(t, s, "", "INSERT INTO default.insert_nice SELECT toString(getSetting('os_thread_priority'))")
	if got := mustAsk(t, s, "", "SELECT v FROM default.insert_nice"); got != "0\n" {
		t.Errorf("an INSERT ran at os_thread_priority %q, want the engine's 0", got)
	}
}
