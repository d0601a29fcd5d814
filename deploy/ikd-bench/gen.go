package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/region"
)

// city is one domicile the generator draws from, with its districts.
type city struct {
	province, code string
	districts      []string
}

// generator makes valid events directly (what events.Builder would produce
// from a counter line): region codes from the reference data, a resident
// pseudonym from a well-formed NIK, a unique event id. It never draws the
// marker city, which the freshness step keeps for its probes.
type generator struct {
	prefix string
	rng    *rand.Rand
	ps     *nik.Pseudonymizer
	cities []city
	seq    uint64
}

var birthStart = time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC)

func loadCities(ref *region.Reference) []city {
	var out []city
	for _, c := range ref.Cities() {
		var ds []string
		for _, d := range ref.DistrictsOf(c.Code) {
			ds = append(ds, d.Code)
		}
		if len(ds) == 0 {
			continue
		}
		out = append(out, city{province: c.ProvinceCode, code: c.Code, districts: ds})
	}
	return out
}

func newGenerator(prefix string, seed uint64, cities []city, ps *nik.Pseudonymizer) *generator {
	return &generator{prefix: prefix, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), ps: ps, cities: cities}
}

// event returns the next event; c is the domicile, or nil for a random one
// (never the marker city, which is cities[0] and excluded here).
func (g *generator) event(c *city, typ events.Type, now time.Time) events.Event {
	if c == nil {
		c = &g.cities[1+g.rng.IntN(len(g.cities)-1)]
	}
	if typ == "" {
		typ = events.TypeActivation
		if g.rng.IntN(2) == 0 {
			typ = events.TypeEnrolment
		}
	}
	d := c.districts[g.rng.IntN(len(c.districts))]
	birth := birthStart.AddDate(0, 0, g.rng.IntN(20000))
	number := nik.Format(c.province, c.code, d, birth, g.rng.IntN(2) == 1, 1+g.rng.IntN(9999))
	g.seq++
	return events.Event{
		V:            events.Version,
		EventID:      fmt.Sprintf("%s-%d", g.prefix, g.seq),
		Type:         typ,
		Resident:     g.ps.Resident(number),
		ProvinceCode: c.province,
		CityCode:     c.code,
		DistrictCode: d,
		OfficeID:     c.code[:2] + c.code[3:] + "-OFF-01",
		Channel:      events.ChannelCounter,
		OccurredAt:   now.UTC().Truncate(time.Millisecond),
	}
}

func (g *generator) batch(n int) []events.Event {
	now := time.Now()
	out := make([]events.Event, n)
	for i := range out {
		out[i] = g.event(nil, "", now)
	}
	return out
}
