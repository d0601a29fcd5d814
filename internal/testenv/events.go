package testenv

import (
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/region"
)

// Builder builds events the way the programs under test do in development
// mode: the region reference, the public development key, the clock, and ten
// minutes of tolerance for clock skew. Tests that need another clock or
// tolerance set the field.
func Builder(t testing.TB) *events.Builder {
	t.Helper()
	ref, err := region.Load()
	if err != nil {
		t.Fatal(err)
	}
	pseudonyms, err := nik.NewPseudonymizer([]byte(nik.DevelopmentKey))
	if err != nil {
		t.Fatal(err)
	}
	return &events.Builder{Ref: ref, Pseudonyms: pseudonyms, Now: time.Now, FutureTolerance: 10 * time.Minute}
}
