package chhttp

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ikd-pipeline/ikd/internal/engine"
)

// BenchmarkSelectOne is the front's cost per request for a statement it has
// seen before: a fresh session, the guard's decision on the remembered parse
// and the statement.
func BenchmarkSelectOne(b *testing.B) {
	benchmarkFront(b, func(int) string { return "SELECT 1" })
}

// BenchmarkSelectNew is the same for statements never seen before: the
// guard's two parse calls are added.
func BenchmarkSelectNew(b *testing.B) {
	benchmarkFront(b, func(i int) string { return fmt.Sprintf("SELECT %d", i) })
}

func benchmarkFront(b *testing.B, statement func(int) string) {
	s, err := newServer(eng, Config{TempDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.closeParsers()
	for i := 0; b.Loop(); i++ {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader(statement(i))))
		if rec.Code != 200 {
			b.Fatal(rec.Body.String())
		}
	}
}

// BenchmarkEngineSelectOne is the engine alone in a fresh session.
func BenchmarkEngineSelectOne(b *testing.B) {
	for b.Loop() {
		if _, err := eng.Query(engineRequest("SELECT 1")); err != nil {
			b.Fatal(err)
		}
	}
}

func engineRequest(sql string) engine.Request { return engine.Request{SQL: sql} }
