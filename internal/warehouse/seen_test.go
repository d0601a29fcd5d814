package warehouse_test

import (
	"context"
	"crypto/md5"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

func TestTheLedgersFilterNeverForgetsAKeyAndRarelyImaginesOne(t *testing.T) {
	const keys = 100_000
	f := warehouse.NewFilter(1<<17, 2025) // 10.5 bits a key, as 64 MiB for a nation's year
	resident := func(i int) warehouse.ResidentKey { return md5.Sum(fmt.Appendf(nil, "resident %d", i)) }
	for i := range keys {
		f.Add("activation", 2025, resident(i))
	}
	imagined := 0
	for i := range keys {
		if f.CertainlyNew("activation", 2025, resident(i)) {
			t.Fatalf("resident %d was added, yet the filter calls them new", i)
		}
		if !f.CertainlyNew("activation", 2025, resident(keys+i)) {
			imagined++
		}
	}
	rate := float64(imagined) / keys
	if rate > 0.02 {
		t.Errorf("%.2f %% of new residents taken as maybe counted, want about 1 %%", 100*rate)
	}
	t.Logf("%.2f %% of %d new residents taken as maybe counted", 100*rate, keys)
	// The same resident of another type or year is another key.
	other := 0
	for i := range 1000 {
		if !f.CertainlyNew("enrolment", 2025, resident(i)) || !f.CertainlyNew("activation", 2026, resident(i)) {
			other++
		}
	}
	if other > 50 {
		t.Errorf("%d of 1000 residents counted in 2025's activations seem held for another type or year", other)
	}
	if f.CertainlyNew("activation", 2024, resident(keys+1)) {
		t.Error("a year before the filter's first is taken as known; it must be looked up")
	}
}

func TestTheLedgersKeysAreLoadedInSlicesOfResidents(t *testing.T) {
	for _, tc := range []struct {
		keys   uint64
		slices int
	}{{0, 1}, {1000, 1}, {1 << 18, 1}, {1<<18 + 1, 2}, {55_000_000, 256}, {1 << 40, 256}} {
		got := warehouse.ResidentRanges(tc.keys)
		if len(got) != tc.slices {
			t.Errorf("%d keys: %d slices, want %d", tc.keys, len(got), tc.slices)
		}
		// They cover every first byte once, in order.
		next := 0
		for _, r := range got {
			if r[0] != next || r[1] <= r[0] {
				t.Fatalf("%d keys: slices %v leave a gap or overlap at %d", tc.keys, got, next)
			}
			next = r[1]
		}
		if next != 256 {
			t.Errorf("%d keys: slices %v end at %d, want 256", tc.keys, got, next)
		}
	}
}

// TestAFilteredWriterCountsAsTheLedgerDoes: a writer that takes over a
// ledger another wrote knows its residents once loaded, moves a late
// resident to their earlier day, counts a new one and a regrouped batch once,
// and skips looking up only residents the ledger does not hold.
func TestAFilteredWriterCountsAsTheLedgerDoes(t *testing.T) {
	conn, _ := testenv.MigratedWarehouse(t)
	const act, enr = events.TypeActivation, events.TypeEnrolment
	write(t, conn, // by the writer before
		event(act, "ani", "17.71", "2025-03-02 09:00"),
		event(act, "budi", "17.71", "2025-03-05 09:00"),
		event(enr, "citra", "17.02", "2025-01-05 09:00"),
	)
	june := func() time.Time { return time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC) }
	w := warehouse.NewFilteredEventWriter(conn, warehouse.FilterConfig{Bytes: 1 << 16, Now: june})
	if err := <-w.Begin(context.Background()); err != nil {
		t.Fatalf("load the filter: %v", err)
	}
	for _, r := range []struct {
		typ       events.Type
		name      string
		wantKnown bool
	}{{act, "ani", true}, {act, "budi", true}, {enr, "citra", true}, {act, "citra", false}, {act, "dewi", false}} {
		if known := !warehouse.CertainlyNew(w, string(r.typ), 2025, pseudonym(r.name)); known != r.wantKnown {
			t.Errorf("%s %s: known to the filter %t, want %t", r.typ, r.name, known, r.wantKnown)
		}
	}
	ctx := context.Background()
	batches := [][]warehouse.Record{
		{event(act, "ani", "17.71", "2025-02-13 09:00"), event(act, "dewi", "17.71", "2025-04-01 09:00")}, // ani late, dewi new
		{event(act, "budi", "17.71", "2025-05-05 09:00"), event(act, "citra", "17.02", "2025-04-02 09:00")},
		{event(act, "citra", "17.02", "2025-04-02 09:00"), event(act, "dewi", "17.71", "2025-04-01 09:00")}, // regrouped redelivery
		{event(act, "dewi", "17.71", "2025-03-20 09:00")},                                                   // dewi, written by this writer, late
	}
	for i, b := range batches {
		if err := w.Write(ctx, b); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	wantFigures(t, conn, "attainment_city", "2025-02-20", "year = 2025 AND city_code = '17.71'", 1, 0) // ani
	wantFigures(t, conn, "attainment_city", "2025-03-25", "year = 2025 AND city_code = '17.71'", 3, 0) // ani, budi, dewi
	wantFigures(t, conn, "attainment_city", "2025-12-31", "year = 2025 AND city_code = '17.02'", 1, 1) // citra
	wantFigures(t, conn, "attainment_national", "2025-12-31", "year = 2025", 4, 1)
	ledgerIsConsistent(t, conn)
	if warehouse.CertainlyNew(w, string(act), 2025, pseudonym("dewi")) {
		t.Error("a resident the writer counted is still new to its filter")
	}
	// Taking the lease again, the writer clears its filter and loads it anew.
	if err := <-w.Begin(ctx); err != nil {
		t.Fatalf("load the filter again: %v", err)
	}
	if warehouse.CertainlyNew(w, string(act), 2025, pseudonym("dewi")) || !warehouse.CertainlyNew(w, string(act), 2025, pseudonym("eko")) {
		t.Error("the filter loaded anew does not know the ledger's residents, or knows one it never held")
	}
}

// TestAFilterLoadedWhileItsWriterWritesMissesNoResident: the keys written
// while the filter loads are in it either way, so no resident counted then
// is counted again after.
func TestAFilterLoadedWhileItsWriterWritesMissesNoResident(t *testing.T) {
	conn, _ := testenv.MigratedWarehouse(t)
	ctx := context.Background()
	june := func() time.Time { return time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC) }
	var first, again []warehouse.Record
	for i := range 300 {
		first = append(first, event(events.TypeActivation, fmt.Sprint("r", i), "17.71", "2025-03-02 09:00"))
		again = append(again, event(events.TypeActivation, fmt.Sprint("r", i), "17.71", "2025-04-02 09:00"))
	}
	w := warehouse.NewFilteredEventWriter(conn, warehouse.FilterConfig{Bytes: 1 << 16, Now: june})
	loaded := w.Begin(ctx)
	for from := 0; from < len(first); from += 50 {
		if err := w.Write(ctx, first[from:from+50]); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-loaded; err != nil {
		t.Fatalf("load the filter: %v", err)
	}
	slices.Reverse(again)
	if err := w.Write(ctx, again); err != nil {
		t.Fatal(err)
	}
	wantFigures(t, conn, "attainment_city", "2025-12-31", "year = 2025 AND city_code = '17.71'", 300, 0)
	ledgerIsConsistent(t, conn)
}

// BenchmarkTheLedgersFilter is the filter's part of a new resident's write
// at its default size: asked once, then given the key.
func BenchmarkTheLedgersFilter(b *testing.B) {
	f := warehouse.NewFilter(64<<20, 2025)
	keys := make([]warehouse.ResidentKey, 1<<16)
	for i := range keys {
		keys[i] = md5.Sum(fmt.Appendf(nil, "resident %d", i))
	}
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		k[0] ^= byte(i >> 16) // a new key on every pass over keys
		if f.CertainlyNew("activation", 2025, k) {
			f.Add("activation", 2025, k)
		}
		i++
	}
}
