package config_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/config"
)

type inner struct {
	Size int           `envconfig:"SIZE" default:"5"`
	Wait time.Duration `envconfig:"WAIT" default:"1s"`
}

func (c inner) Validate() error {
	return errors.Join(config.AtLeast("Size", c.Size, 1), config.Positive("Wait", c.Wait))
}

type Base struct {
	URL string `envconfig:"URL" default:"nats://127.0.0.1:4222"`
}

func (c Base) Validate() error { return config.URLs("URL", c.URL, config.NatsSchemes...) }

type program struct {
	Base
	Part inner  `envconfig:"PART"`
	Mode string `envconfig:"MODE" default:"fast"`
}

func (c *program) Validate() error {
	var mode error
	if c.Mode != "fast" && c.Mode != "exact" {
		mode = config.Invalid("Mode", "unknown value %q; one of fast, exact", c.Mode)
	}
	return errors.Join(c.Base.Validate(), mode)
}

func TestLoadNamesTheVariableOfEveryRefusedValue(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want []string // variables the error must name; none: accepted
	}{
		{env: map[string]string{}},
		{env: map[string]string{"IKD_PART_SIZE": "0"}, want: []string{"IKD_PART_SIZE: must be at least 1, got 0"}},
		{env: map[string]string{"IKD_PART_WAIT": "-2s"}, want: []string{"IKD_PART_WAIT: must be a positive duration"}},
		{env: map[string]string{"IKD_URL": "localhost:4222"}, want: []string{"IKD_URL: must be a nats or tls or ws or wss URL"}},
		{env: map[string]string{"IKD_URL": "nats://a:4222,http://b:4222"}, want: []string{"IKD_URL"}},
		{env: map[string]string{"IKD_MODE": "slow"}, want: []string{`IKD_MODE: unknown value "slow"; one of fast, exact`}},
		{env: map[string]string{"IKD_PART_SIZE": "-1", "IKD_MODE": "slow"}, want: []string{"IKD_PART_SIZE", "IKD_MODE"}},
	}
	for _, c := range cases {
		unset(t, "IKD_PART_SIZE", "IKD_PART_WAIT", "IKD_URL", "IKD_MODE", "SIZE", "WAIT", "URL", "MODE")
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		var cfg program
		err := config.Load(&cfg)
		if len(c.want) == 0 {
			if err != nil {
				t.Errorf("%v: refused: %v", c.env, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%v: accepted", c.env)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not say %q", c.env, err, w)
			}
		}
	}
}

// unset removes variables for the test; they are restored after it.
func unset(t *testing.T, names ...string) {
	t.Helper()
	for _, v := range names {
		t.Setenv(v, "")
		if err := os.Unsetenv(v); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAURLWithAPasswordIsNotRepeatedInTheError(t *testing.T) {
	err := config.URL("WebhookURL", "ftp://user:s3cret@example.org/hook/t0k3n", "http", "https")
	if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "t0k3n") {
		t.Fatalf("error %v", err)
	}
}
