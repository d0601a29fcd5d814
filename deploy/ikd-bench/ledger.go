package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"log"
	"math/rand/v2"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/consumers/aggregator"
	"github.com/ikd-pipeline/ikd/internal/config"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

// ledgerLookups times the aggregator's write of batches of nationalYear's
// events into a ledger that holds the national set: every resident looked
// up, and with the filter an aggregator taking the lease in nationalYear
// loads. The bench's live events are dated today, a year the national set
// does not fill, so the steps before never look up a resident among a
// nation's. A tenth of each batch are residents of the national set
// activating again (in another city than theirs, so they count there too:
// this runs after every check of the figures); the rest are new. The two
// writers take turns, batch by batch.
func ledgerLookups(ctx context.Context, conn driver.Conn, g *generator, activations int64, batches, size int) ([]Row, error) {
	plain := warehouse.NewEventWriter(conn)
	filtered := aggregatorWriter(conn, inNationalYear)
	began := time.Now()
	if err := <-filtered.Begin(ctx); err != nil {
		return nil, fmt.Errorf("ledger: load the filter: %w", err)
	}
	load := time.Since(began)
	log.Printf("step 6: ledger filter of %d loaded in %s", nationalYear, load.Round(time.Millisecond))
	rng := rand.New(rand.NewPCG(7, 11))
	var times [2][]time.Duration
	for i := range 2 * batches {
		recs := make([]warehouse.Record, size)
		at := inNationalYear()
		for j := range recs {
			ev := g.event(nil, events.TypeActivation, at)
			if j%10 == 0 { // as the national load names its residents
				sum := md5.Sum(fmt.Appendf(nil, "activation%d", rng.Int64N(activations)))
				ev.Resident = hex.EncodeToString(sum[:])
			}
			recs[j] = warehouse.Record{Event: ev}
		}
		w := plain
		if i%2 == 1 {
			w = filtered
		}
		t0 := time.Now()
		if err := w.Write(ctx, recs); err != nil {
			return nil, fmt.Errorf("ledger: write batch %d: %w", i, err)
		}
		times[i%2] = append(times[i%2], time.Since(t0))
	}
	note := fmt.Sprintf("%d batches of %d activations dated in %d, a tenth of them residents of the national set, through EventWriter.Write", batches, size, nationalYear)
	var rows []Row
	for k, name := range []string{"every resident looked up", fmt.Sprintf("with the aggregator's filter (%d MiB)", filterMiB())} {
		rows = append(rows,
			Row{Step: fmt.Sprintf("6 ledger: write of a batch in %d at national scale, %s, p50", nationalYear, name), Figure: ms(percentile(times[k], 0.5)), Unit: "ms", Goal: "-", Met: "-", Note: note},
			Row{Step: "6 ledger: same, p99", Figure: ms(percentile(times[k], 0.99)), Unit: "ms", Goal: "info", Met: "-", Note: note})
	}
	rows = append(rows, Row{Step: "6 ledger: the filter's load at national scale", Figure: load.Seconds(), Unit: "s", Goal: "info", Met: "-",
		Note: fmt.Sprintf("the keys of %d, as an aggregator taking the lease in that year loads them; it looks every resident up meanwhile", nationalYear)})
	return rows, nil
}

// filterMiB is the size of the aggregator's filter of the ledger's keys in
// its default configuration.
func filterMiB() int { return config.MustDefaults[aggregator.Config]().LedgerFilterMiB }

// aggregatorWriter writes as the aggregator does in its default
// configuration, with its filter of the ledger's keys, the current year
// being now's; Begin loads the filter.
func aggregatorWriter(conn driver.Conn, now func() time.Time) *warehouse.EventWriter {
	return warehouse.NewFilteredEventWriter(conn, warehouse.FilterConfig{Bytes: filterMiB() << 20, Now: now})
}
