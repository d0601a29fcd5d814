package alerter

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// EpisodeID is episodeID, for tests that stand in for another replica.
var EpisodeID = episodeID

// Today is today, for its table test.
var Today = today

// ReadAttainment is what an evaluation as of now reads, from the running views
// or the as-of views.
func ReadAttainment(ctx context.Context, conn driver.Conn, now time.Time, cities []string, running bool) ([]Row, error) {
	return warehouseStore{conn: conn}.attainment(ctx, now, cities, running)
}
