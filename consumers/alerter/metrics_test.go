package alerter

import "testing"

func TestAlertsFiringAreCountedBySeverityWithBothAlwaysPresent(t *testing.T) {
	tests := []struct {
		name   string
		firing map[string]Alert
		want   map[Severity]uint64
	}{
		{"none", nil, map[Severity]uint64{Warning: 0, Critical: 0}},
		{"mixed", map[string]Alert{
			"a": {Severity: Warning}, "b": {Severity: Critical}, "c": {Severity: Critical},
		}, map[Severity]uint64{Warning: 1, Critical: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bySeverity(tt.firing)
			if len(got) != len(tt.want) {
				t.Fatalf("bySeverity = %v; want %v", got, tt.want)
			}
			for s, n := range tt.want {
				if got[s] != n {
					t.Errorf("bySeverity = %v; want %v", got, tt.want)
				}
			}
		})
	}
}
