package chhttp

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ikd-pipeline/ikd/internal/engine"
)

// BenchmarkSelectOne is the front's cost per request: a fresh session, the
// guard's two parse calls and the statement.
func BenchmarkSelectOne(b *testing.B) {
	s, err := newServer(eng, Config{TempDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.closeParsers()
	for b.Loop() {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader("SELECT 1")))
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
