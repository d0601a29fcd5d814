package clusterfaults_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/producers/publish"
)

type cityYear struct {
	city string
	year int
}

// makeEvents builds n valid events over a few dozen cities: enrolments,
// activations, and residents who come back (a reactivation, counted once).
func makeEvents(t *testing.T, n int, ref *region.Reference) []events.Event {
	t.Helper()
	pseudonyms, err := nik.NewPseudonymizer([]byte(nik.DevelopmentKey))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	b := &events.Builder{Ref: ref, Pseudonyms: pseudonyms, Now: func() time.Time { return now }, FutureTolerance: 10 * time.Minute}
	rng := rand.New(rand.NewPCG(14, 3))
	var cities []region.City
	for _, c := range ref.Cities() {
		if len(ref.DistrictsOf(c.Code)) > 0 {
			cities = append(cities, c)
		}
	}
	rng.Shuffle(len(cities), func(i, j int) { cities[i], cities[j] = cities[j], cities[i] })
	cities = cities[:40]
	var niks []string
	seen := map[string]bool{}
	var out []events.Event
	for len(out) < n {
		var id string
		if len(niks) > 0 && rng.IntN(5) == 0 {
			id = niks[rng.IntN(len(niks))]
		} else {
			c := cities[rng.IntN(len(cities))]
			ds := ref.DistrictsOf(c.Code)
			birth := time.Date(1950+rng.IntN(55), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
			id = nik.Format(c.ProvinceCode, c.Code, ds[rng.IntN(len(ds))].Code, birth, rng.IntN(2) == 0, 1+len(niks)%9999)
			niks = append(niks, id)
		}
		typ := events.TypeActivation
		if rng.IntN(3) == 0 {
			typ = events.TypeEnrolment
		}
		// Within this year's last 200 days, the year the alerter watches.
		at := now.Add(-time.Duration(rng.Int64N(int64(200 * 24 * time.Hour)))).Add(-time.Hour).Truncate(time.Millisecond)
		line := fmt.Sprintf(`{"type":%q,"nik":%q,"office_id":"OFFICE-%d","occurred_at":%q,"channel":"counter"}`,
			typ, id, rng.IntN(9), at.Format(time.RFC3339Nano))
		ev, err := b.Build([]byte(line))
		if err != nil {
			t.Fatalf("build %s: %v", line, err)
		}
		if !seen[ev.EventID] {
			seen[ev.EventID] = true
			out = append(out, ev)
		}
	}
	return out
}

// residents are the unique residents that evs must count, by city and year.
func residents(evs []events.Event) (activated, enrolled map[cityYear]map[string]bool) {
	activated, enrolled = map[cityYear]map[string]bool{}, map[cityYear]map[string]bool{}
	for _, ev := range evs {
		set := activated
		if ev.Type == events.TypeEnrolment {
			set = enrolled
		}
		k := cityYear{ev.CityCode, ev.OccurredAt.In(events.WIB).Year()}
		if set[k] == nil {
			set[k] = map[string]bool{}
		}
		set[k][ev.Resident] = true
	}
	return activated, enrolled
}

// feed publishes events as a counter does, through every node's URL, and
// keeps what the broker acknowledged, and when.
type feed struct {
	pub   *publish.Publisher
	conn  driver.Conn
	mu    sync.Mutex
	acked []events.Event
	at    []time.Time // when acked[i] was acknowledged
	lost  int         // events whose publish was given up
}

func newFeed(t *testing.T, nc *nats.Conn, conn driver.Conn) *feed {
	t.Helper()
	p, err := publish.New(nc, publish.Options{RetryFor: 5 * time.Minute}, testenv.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	return &feed{pub: p, conn: conn}
}

// chunk is how many events a counter hands the publisher at once.
const chunk = 100

// maxLag bounds how far publishing runs ahead of the warehouse, so that a
// fault falls while events are both published and drained.
const maxLag = 1500

// run publishes evs in chunks until done, keeping at most maxLag events ahead of
// what the warehouse holds. Its last third waits until fallen is closed (the
// fault has fallen), so that some publishes come after the fault however
// fast the rest went: once a whole part was acknowledged before the
// aggregators had finished their migrations, and nothing could be
// acknowledged after the fault. It returns the publish errors it met.
func (f *feed) run(ctx context.Context, evs []events.Event, fallen <-chan struct{}) error {
	for i := 0; i < len(evs); i += chunk {
		if i >= len(evs)*2/3 {
			select {
			case <-fallen:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err := testenv.Await(10*time.Minute, func() error {
			if lag := f.count() - int(countedEvents(ctx, f.conn)); lag > maxLag {
				return fmt.Errorf("%d acknowledged events not yet in the warehouse", lag)
			}
			return nil
		})
		if err != nil {
			return err
		}
		part := evs[i:min(i+chunk, len(evs))]
		_, err = f.pub.Publish(ctx, part)
		failed := map[string]bool{}
		var perr *publish.Error
		if errors.As(err, &perr) {
			for _, fl := range perr.Failures {
				failed[fl.EventID] = true
			}
		} else if err != nil {
			return err
		}
		now := time.Now()
		f.mu.Lock()
		for _, ev := range part {
			if failed[ev.EventID] {
				f.lost++
				continue
			}
			f.acked = append(f.acked, ev)
			f.at = append(f.at, now)
		}
		f.mu.Unlock()
	}
	return nil
}

func (f *feed) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.acked)
}

// ackedAfter returns the first event acknowledged after t, if any.
func (f *feed) ackedAfter(t time.Time) (events.Event, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.at {
		if f.at[i].After(t) {
			return f.acked[i], true
		}
	}
	return events.Event{}, false
}

func (f *feed) snapshot() []events.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]events.Event(nil), f.acked...)
}

// countedEvents is how many distinct events the warehouse holds (0 before
// the schema exists).
func countedEvents(ctx context.Context, conn driver.Conn) uint64 {
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM ikd.events").Scan(&n); err != nil {
		return 0
	}
	return n
}
