package demoyear_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/producers/demoyear"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

func TestTheSeededYearIsCountedByTheViewsNearPaceAndSeededOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db, ref := testenv.MigratedWarehouse(t)
	// 1 July: half the year gone by, whatever day the test runs. The views
	// are read as of 30 June, the last day the seed fills.
	now := time.Date(time.Now().Year(), 7, 1, 10, 0, 0, 0, time.UTC)
	cfg := demoyear.Config{Scale: 0.002}
	res, err := demoyear.Seed(ctx, db, ref, now, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Kept || res.Activations == 0 || res.ActivationsLastYear == 0 {
		t.Fatalf("seed: %+v", res)
	}
	var activated, target, lastActivated, cities, behind uint64
	var expected float64
	asOf := now.Format("2006") + "-06-30"
	if err := db.QueryRow(ctx, `SELECT sum(activated), sum(target), any(expected_pct), count(), countIf(behind_pace)
		FROM ikd.attainment_city_as_of(as_of = ?) WHERE year = ?`, asOf, uint16(now.Year())).Scan(&activated, &target, &expected, &cities, &behind); err != nil {
		t.Fatal(err)
	}
	if activated != res.Activations {
		t.Errorf("the views count %d activations, the seed wrote %d", activated, res.Activations)
	}
	if share := 100 * float64(activated) / float64(target); share < expected*0.85 || share > expected*1.15 {
		t.Errorf("seeded attainment %.2f %%, want near the pace %.2f %%", share, expected)
	}
	if behind == 0 || behind > cities/2 {
		t.Errorf("%d of %d cities behind pace: want some, not most", behind, cities)
	}
	if err := db.QueryRow(ctx, `SELECT sum(activated) FROM ikd.attainment_city_as_of(as_of = ?) WHERE year = ?`,
		now.Format("2006")+"-06-30", uint16(now.Year()-1)).Scan(&lastActivated); err != nil {
		t.Fatal(err)
	}
	if lastActivated != res.ActivationsLastYear {
		t.Errorf("last year: the views count %d, the seed wrote %d", lastActivated, res.ActivationsLastYear)
	}
	var national uint64
	if err := db.QueryRow(ctx, `SELECT toUInt64(ceil(value / 100 * recorded_baseline)) FROM ikd.targets FINAL WHERE year = ? AND region_code = ''`,
		uint16(now.Year())).Scan(&national); err != nil {
		t.Fatal(err)
	}
	if national != res.Target || national == 0 {
		t.Errorf("national target %d, seed said %d", national, res.Target)
	}

	again, err := demoyear.Seed(ctx, db, ref, now, cfg)
	if err != nil || !again.Kept {
		t.Errorf("a second seed of a year with targets: %+v, %v; want it kept", again, err)
	}
}
