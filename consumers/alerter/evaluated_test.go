package alerter_test

import (
	"testing"

	"github.com/ikd-pipeline/ikd/consumers/alerter"
)

// The bench measures the alerter's cost through Evaluated: each evaluation
// is reported once, with the cities it was asked about and the regions it read.
func TestEvaluatedReportsEachEvaluationWithTheRegionsItRead(t *testing.T) {
	e := start(t)
	a := e.alerter(t, testConfig())
	e.february(t)
	var got []alerter.Evaluation
	a.Evaluated = func(ev alerter.Evaluation) { got = append(got, ev) }

	if err := a.Evaluate(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Evaluate(e.ctx, []string{"17.71"}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d evaluations reported, want 2: %+v", len(got), got)
	}
	// Every region with a target: 17.71, 18.71 and the province 17.
	if all := got[0]; all.Cities != 0 || all.Rows != 3 || all.Err != nil || all.Took <= 0 {
		t.Errorf("evaluation of every region reported as %+v, want 0 cities, 3 rows, no error, a duration", all)
	}
	// One city and its province.
	if one := got[1]; one.Cities != 1 || one.Rows != 2 || one.Err != nil || one.Took <= 0 {
		t.Errorf("evaluation of 17.71 reported as %+v, want 1 city, 2 rows, no error, a duration", one)
	}
}
