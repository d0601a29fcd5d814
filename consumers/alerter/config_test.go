package alerter_test

import (
	"os"
	"reflect"
	"testing"

	"github.com/ikd-pipeline/ikd/consumers/alerter"
	"github.com/ikd-pipeline/ikd/internal/config"
)

func TestDefaultConfigIsWhatIkdAlerterRunsWithWhenNothingIsSet(t *testing.T) {
	for _, f := range reflect.VisibleFields(reflect.TypeFor[alerter.Config]()) {
		name := f.Tag.Get("envconfig")
		// envconfig reads both the prefixed and the bare name.
		for _, v := range []string{config.Prefix + "_ALERTER_" + name, name} {
			t.Setenv(v, "") // restored after the test
			if err := os.Unsetenv(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	var loaded struct {
		Alerter alerter.Config `envconfig:"ALERTER"`
	}
	if err := config.Load(&loaded); err != nil {
		t.Fatal(err)
	}
	if got := alerter.DefaultConfig(); got != loaded.Alerter {
		t.Fatalf("DefaultConfig() = %+v, ikd-alerter runs with %+v", got, loaded.Alerter)
	}
}
