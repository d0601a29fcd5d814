package alerter_test

import (
	"testing"
)

// The projection rule fires when the year-end projection falls below the
// target and resolves only once it is HysteresisPct points above it, so that
// a region hovering at 100 % does not flap.
func TestTheProjectionResolvesOnlyPastItsHysteresisBand(t *testing.T) {
	e := start(t)
	a := e.alerter(t, testConfig())
	e.activations(t, "17.71", 12393)
	// Expected 12.05 %: the projection is 100 * attainment / 12.05; it fires
	// below 100 and, with the default band of 2, resolves at 102 or more.
	// Attainments stay above the behind_pace edge (7.05 %), so only the
	// projection moves.
	steps := []struct {
		target uint64
		pct    float64
		firing bool
	}{
		{110000, 11.27, true},  // projection 93.5: fires
		{102000, 12.15, true},  // projection 100.8: inside the band, still firing
		{98000, 12.65, false},  // projection 105.0: past the band, resolves
		{102000, 12.15, false}, // back inside the band from above: stays resolved
	}
	for i, s := range steps {
		e.target(t, "17.71", "absolute", float64(s.target), 0)
		if got := e.view(t, "city", "17.71"); got.AttainmentPct != s.pct {
			t.Fatalf("step %d: attainment %v want %v", i, got.AttainmentPct, s.pct)
		}
		if err := a.Evaluate(e.ctx, []string{"17.71"}); err != nil {
			t.Fatal(err)
		}
		if _, firing := a.Firing()["projection/17.71/2023"]; firing != s.firing {
			t.Fatalf("step %d (attainment %v%%): projection firing %v, want %v", i, s.pct, firing, s.firing)
		}
		if _, firing := a.Firing()["behind_pace/17.71/2023"]; firing {
			t.Fatalf("step %d: behind_pace fired; the test means to move the projection only", i)
		}
	}
}
