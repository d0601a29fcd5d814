package logsample_test

import (
	"testing"

	"github.com/ikd-pipeline/ikd/internal/logsample"
)

func TestDueLogsTheFirstAndEveryThousandth(t *testing.T) {
	for n, want := range map[uint64]bool{0: false, 1: true, 2: false, 999: false, 1000: true, 1001: false, 2000: true} {
		if got := logsample.Due(n); got != want {
			t.Errorf("Due(%d) = %v, want %v", n, got, want)
		}
	}
}
