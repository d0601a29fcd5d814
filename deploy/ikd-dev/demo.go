package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/producers/demoyear"
)

// seedDemoYear gives the simulator a year already under way (see
// producers/demoyear), once per data directory, and says what it did.
func seedDemoYear(ctx context.Context, cfg demoyear.Config, db driver.Conn, w io.Writer) error {
	ref, err := region.Load()
	if err != nil {
		return err
	}
	// The first seed takes seconds: the line starts before it.
	fmt.Fprint(w, "  demo year       ")
	start := time.Now()
	res, err := demoyear.Seed(ctx, db, ref, start, cfg)
	switch {
	case err != nil:
		fmt.Fprintln(w, "not seeded")
		return err
	case cfg.Scale <= 0:
		fmt.Fprintln(w, "not seeded (IKD_DEMO_SCALE=0)")
	case res.Kept:
		fmt.Fprintf(w, "%d kept as it is: it has targets\n", res.Year)
	default:
		fmt.Fprintf(w, "%d seeded, simulated at %g of the registry's size: %d activations up to yesterday against a national target of %d, %d in %d (%.1f s)\n",
			res.Year, cfg.Scale, res.Activations, res.Target, res.ActivationsLastYear, res.Year-1, time.Since(start).Seconds())
	}
	return nil
}
