package chhttp

import (
	"os"
	"strings"
	"testing"
)

// The engine's parse of a statement is remembered; what the guard decides
// from it is not: the same text is refused to a read-only user after a
// writer ran it, and once a host file of its table's name appears.
func TestGuardDecidesAgainOnARememberedParse(t *testing.T) {
	t.Chdir(t.TempDir()) // the engine would open a file of a table's name here
	s := front(t, Config{})
	const create = "CREATE TABLE scratch (a UInt8) ENGINE = Memory"
	const read = "SELECT * FROM data.csv"
	for _, step := range []struct {
		what     string
		sql      string
		readonly int
		code     int // 0 when allowed
	}{
		{"a writer creates", create, 0, 0},
		{"a reader may not", create, 1, 164},
		{"a read of a table", read, 0, 0},
		{"the same read once data.csv exists", read, 0, 497},
	} {
		if step.sql == read && step.code != 0 {
			if err := os.WriteFile("data.csv", []byte("1\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		_, _, err := s.guard(step.sql, nil, step.readonly)
		if (step.code == 0) != (err == nil) || step.code != 0 && !hasCode(err, step.code) {
			t.Errorf("%s: %v, want code %d", step.what, err, step.code)
		}
		key, _ := parseKey(step.sql, nil)
		if _, ok := s.parses.get(key); !ok {
			t.Errorf("%s: the parse of %q is not remembered", step.what, step.sql)
		}
	}
}

// A statement is remembered with its parameters, which may change its
// parse; one whose parameters are large is parsed every time.
func TestParsesAreKeyedByTextAndParameters(t *testing.T) {
	a, _ := parseKey("SELECT {x:UInt8}", map[string]string{"x": "1"})
	b, _ := parseKey("SELECT {x:UInt8}", map[string]string{"x": "2"})
	c, _ := parseKey("SELECT {x:UInt8}", nil)
	if a == b || a == c || b == c {
		t.Errorf("keys alike: %q %q %q", a, b, c)
	}
	two, _ := parseKey("SELECT 1", map[string]string{"x": "1", "y": "2"})
	for range 20 { // maps iterate in any order
		if again, _ := parseKey("SELECT 1", map[string]string{"y": "2", "x": "1"}); again != two {
			t.Fatalf("the same parameters give keys %q and %q", two, again)
		}
	}
	if _, keep := parseKey("SELECT 1", map[string]string{"residents": strings.Repeat("x", maxParseKeySize)}); keep {
		t.Error("a statement with parameters over the limit is kept")
	}
}

// Remembered parses stay within their bound.
func TestParsesForgetBeyondTheirBound(t *testing.T) {
	ps := newParses(3)
	for i := range 10 {
		ps.put(strings.Repeat("k", i+1), parse{formatted: "x"})
	}
	if n := len(ps.entries); n != 3 {
		t.Errorf("%d parses kept, want 3", n)
	}
	if _, ok := ps.get(strings.Repeat("k", 10)); !ok {
		t.Error("the latest parse is not kept")
	}
}
