package papan

import (
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
)

func TestDefaultConfigIsWhatTheTagsGive(t *testing.T) {
	var fromTags Config
	if err := envconfig.Process("IKD_PAPAN_TEST_UNSET", &fromTags); err != nil {
		t.Fatal(err)
	}
	if fromTags != DefaultConfig() {
		t.Errorf("tags give %+v, DefaultConfig %+v", fromTags, DefaultConfig())
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

func TestInvalidConfigNamesTheVariable(t *testing.T) {
	for _, tc := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Listen = "8480" }, "IKD_PAPAN_LISTEN"},
		{func(c *Config) { c.StaleAfter = 0 }, "IKD_PAPAN_STALE_AFTER"},
		{func(c *Config) { c.QueryTimeout = -time.Second }, "IKD_PAPAN_QUERY_TIMEOUT"},
	} {
		c := DefaultConfig()
		tc.change(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one naming %s", err, tc.want)
		}
	}
}
