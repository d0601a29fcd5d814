// Package papan serves the "papan capaian", the attainment board: pages where
// office heads and analysts read attainment of the IKD targets, the nation
// with its 38 provinces, a province with its cities, and a city with its
// year drawn against the target's pace and its alerts, as of any day.
// Server-rendered HTML with SVG charts, nothing fetched at run time; it only
// reads the warehouse (the attainment views, ikd.targets, ikd.alerts).
package papan

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/ikd-pipeline/ikd/internal/config"
)

// Config is the page's configuration, read from IKD_PAPAN_*.
type Config struct {
	// Listen is the page's address; loopback unless an operator opens it.
	Listen string `envconfig:"LISTEN" default:"127.0.0.1:8480"`
	// ClickHouseDSN is the warehouse to read, ideally as a read-only user;
	// unset, the program's own warehouse (IKD_CLICKHOUSE_DSN, or the one
	// ikd-dev hosts).
	ClickHouseDSN string `envconfig:"CLICKHOUSE_DSN" secret:"dsn"`
	// StaleAfter: when the newest counted event is older, the pipeline is
	// shown as lagging.
	StaleAfter time.Duration `envconfig:"STALE_AFTER" default:"15m"`
	// QueryTimeout bounds the warehouse's work for one page.
	QueryTimeout time.Duration `envconfig:"QUERY_TIMEOUT" default:"20s"`
}

// DefaultConfig is Config with its tags' defaults, the one place they are
// written.
func DefaultConfig() Config { return config.MustDefaults[Config]() }

// Validate names the variable that is wrong.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("IKD_PAPAN_LISTEN %q: want host:port: %w", c.Listen, err))
	}
	if c.StaleAfter <= 0 {
		errs = append(errs, fmt.Errorf("IKD_PAPAN_STALE_AFTER %s: must be positive", c.StaleAfter))
	}
	if c.QueryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("IKD_PAPAN_QUERY_TIMEOUT %s: must be positive", c.QueryTimeout))
	}
	return errors.Join(errs...)
}
