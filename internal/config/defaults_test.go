package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/config"
)

type everyKind struct {
	Base
	Name   string               `envconfig:"NAME" default:"ikd"`
	On     bool                 `envconfig:"ON" default:"true"`
	Count  int                  `envconfig:"COUNT" default:"0x10"`
	Small  int8                 `envconfig:"SMALL" default:"-3"`
	Bytes  uint64               `envconfig:"BYTES" default:"1073741824"`
	Ratio  float64              `envconfig:"RATIO" default:"0.5"`
	Wait   time.Duration        `envconfig:"WAIT" default:"1m30s"`
	Unset  string               `envconfig:"UNSET"`
	Nested inner                `envconfig:"NESTED"`
	Anon   struct{ Deep inner } `envconfig:"ANON"`
}

// The defaults a program runs with when nothing is set are those envconfig
// reads from the tags; Defaults must agree with it on every kind it parses.
func TestDefaultsAreWhatEnvconfigLoadsFromAnEmptyEnvironment(t *testing.T) {
	for _, f := range []string{"URL", "NAME", "ON", "COUNT", "SMALL", "BYTES", "RATIO", "WAIT", "UNSET", "SIZE", "NESTED_SIZE", "NESTED_WAIT", "ANON_DEEP_SIZE", "ANON_DEEP_WAIT"} {
		unset(t, config.Prefix+"_"+f, f)
	}
	var loaded everyKind
	if err := config.Load(&loaded); err != nil {
		t.Fatal(err)
	}
	got := config.MustDefaults[everyKind]()
	if !reflect.DeepEqual(got, loaded) {
		t.Fatalf("Defaults gave %+v, envconfig loads %+v", got, loaded)
	}
	if got.Count != 16 || got.Wait != 90*time.Second || got.Nested.Size != 5 || got.Anon.Deep.Wait != time.Second || got.URL == "" {
		t.Fatalf("defaults not all set: %+v", got)
	}
}

func TestAMalformedDefaultNamesItsField(t *testing.T) {
	var bad struct {
		Wait time.Duration `default:"soon"`
	}
	if err := config.Defaults(&bad); err == nil || !strings.Contains(err.Error(), "Wait") {
		t.Fatalf("got %v, want an error naming Wait", err)
	}
	var odd struct {
		Hosts []string `default:"a,b"`
	}
	if err := config.Defaults(&odd); err == nil {
		t.Fatal("a default of a kind Defaults cannot parse was taken")
	}
}
