package warehouse_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

// BenchmarkEventWriterWrite is the aggregator's write of a batch of 5,000
// new residents' activations, filter loaded, on the tests' embedded
// warehouse: events, their ledger rows, and everything both feed.
func BenchmarkEventWriterWrite(b *testing.B) {
	conn, _ := testenv.MigratedWarehouse(b)
	ctx := context.Background()
	w := warehouse.NewFilteredEventWriter(conn, warehouse.FilterConfig{Bytes: 1 << 20})
	if err := <-w.Begin(ctx); err != nil {
		b.Fatal(err)
	}
	const size = 5000
	at := time.Now().UTC().Truncate(time.Millisecond)
	batch := 0
	for b.Loop() {
		recs := make([]warehouse.Record, size)
		for i := range recs {
			name := fmt.Sprint(batch, "-", i)
			recs[i] = warehouse.Record{Event: events.Event{
				V: 1, EventID: pseudonym("event " + name), Type: events.TypeActivation, Resident: pseudonym(name),
				ProvinceCode: "17", CityCode: "17.71", DistrictCode: "17.71.01", OfficeID: "1771-OFF-01",
				Channel: events.ChannelCounter, OccurredAt: at,
			}, Seq: uint64(batch*size + i + 1)}
		}
		batch++
		if err := w.Write(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*size)/b.Elapsed().Seconds(), "events/s")
}
