// Package configtest checks a program's configuration the way its start
// does: loaded from IKD_* variables and validated.
package configtest

import (
	"os"
	"strings"
	"testing"

	"github.com/ikd-pipeline/ikd/internal/config"
)

// Refusal is a variable set to a value the program must refuse, and the
// variable its error must name (Variable itself when Names is empty).
type Refusal struct {
	Variable, Value, Names string
}

// ClearEnv removes every IKD_ variable for the test (restored after it), so
// that the machine's environment cannot decide the result.
func ClearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, config.Prefix+"_") {
			t.Setenv(name, "")
			if err := os.Unsetenv(name); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Refuses checks that the defaults of C load, and that each refusal is
// refused at load with an error naming its variable.
func Refuses[C any](t *testing.T, refusals []Refusal) {
	t.Helper()
	ClearEnv(t)
	var defaults C
	if err := config.Load(&defaults); err != nil {
		t.Fatalf("the defaults are refused: %v", err)
	}
	for _, r := range refusals {
		t.Run(r.Variable+"="+r.Value, func(t *testing.T) {
			ClearEnv(t)
			t.Setenv(r.Variable, r.Value)
			want := r.Names
			if want == "" {
				want = r.Variable
			}
			var cfg C
			if err := config.Load(&cfg); err == nil || !strings.Contains(err.Error(), want+":") {
				t.Errorf("%s=%q: got %v, want an error naming %s", r.Variable, r.Value, err, want)
			}
		})
	}
}
