package chwriter

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/ikd-pipeline/ikd/consumers/aggregator"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

func TestEveryWarehouseFaultGivesTheAggregatorsClass(t *testing.T) {
	for _, tc := range []struct {
		fault  warehouse.Fault
		class  aggregator.Class
		failed bool
	}{
		{warehouse.NoFault, 0, false},
		{warehouse.Passing, aggregator.ClassTransient, true},
		{warehouse.Setup, aggregator.ClassSetup, true},
		{warehouse.Data, aggregator.ClassRefused, true},
		{warehouse.Fault(99), aggregator.ClassRefused, true},
	} {
		if class, failed := classOf(tc.fault); class != tc.class || failed != tc.failed {
			t.Errorf("%v: got (%v, %v), want (%v, %v)", tc.fault, class, failed, tc.class, tc.failed)
		}
	}
}

// The aggregator's decisions are tested and reused without a warehouse
// client: only this adapter links one.
func TestTheAggregatorLinksNoClickHouseClientNorEngine(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "github.com/ikd-pipeline/ikd/consumers/aggregator").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/nats-io/nats.go/jetstream") {
		t.Fatalf("go list -deps listed no broker client; the check below would prove nothing:\n%s", out)
	}
	for _, dep := range deps {
		if strings.HasPrefix(dep, "github.com/ClickHouse/") || dep == "github.com/ebitengine/purego" ||
			dep == "github.com/ikd-pipeline/ikd/internal/warehouse" || dep == "github.com/ikd-pipeline/ikd/internal/engine" {
			t.Errorf("the aggregator links %s", dep)
		}
	}
}
