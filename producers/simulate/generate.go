package simulate

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/region"
)

// The mix of the package comment.
const (
	enrolmentShare = 0.30 // of all events
	repeatShare    = 0.05 // of activations: a resident activating again
	awayShare      = 0.10 // of activations: at an office in another province
	outreachShare  = 0.15 // of activations: at home, by an outreach team
)

const (
	// recentSize residents activated lately are kept for repeats, which are
	// drawn from the older half only: a repeat at the same office in the
	// same millisecond as the first activation would get the same event id.
	recentSize = 4096

	// occurredAtLayout keeps milliseconds for the same reason.
	occurredAtLayout = "2006-01-02T15:04:05.000Z07:00"
)

var (
	firstBirth = time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC)
	lastBirth  = time.Date(2008, 12, 31, 0, 0, 0, 0, time.UTC)
	birthDays  = int(lastBirth.Sub(firstBirth).Hours()/24) + 1
)

// Offices keep local time: WIB (UTC+7) in the west, WITA (UTC+8) in the
// centre, WIT (UTC+9) in the east.
var (
	wib  = time.FixedZone("WIB", 7*3600)
	wita = time.FixedZone("WITA", 8*3600)
	wit  = time.FixedZone("WIT", 9*3600)
)

var witaProvinces = []string{"51", "52", "53", "63", "64", "65", "71", "72", "73", "74", "75", "76"}

func zone(province string) *time.Location {
	switch {
	case province[0] == '8' || province[0] == '9':
		return wit
	case slices.Contains(witaProvinces, province):
		return wita
	default:
		return wib
	}
}

// resident is someone who activated: the NIK and the index of the domicile.
type resident struct {
	nik  string
	city int
}

// generator makes counter input lines; it is deterministic for its seed.
type generator struct {
	rng       *rand.Rand
	cities    []region.City
	districts [][]region.District // by city index
	cum       []int               // cum[i]: districts of cities[0..i]
	recent    []resident          // ring of recent first activations
	next      int                 // where the ring's next entry goes
}

func newGenerator(ref *region.Reference, seed int64) (*generator, error) {
	g := &generator{
		rng:    rand.New(rand.NewPCG(uint64(seed), 0)),
		cities: ref.Cities(),
		recent: make([]resident, 0, recentSize),
	}
	total := 0
	for _, c := range g.cities {
		ds := ref.DistrictsOf(c.Code)
		total += len(ds)
		g.districts = append(g.districts, ds)
		g.cum = append(g.cum, total)
	}
	if total == 0 {
		return nil, errors.New("simulate: the region reference has no districts")
	}
	return g, nil
}

// line is the JSON a counter sends.
type line struct {
	Type       events.Type    `json:"type"`
	NIK        string         `json:"nik"`
	OfficeID   string         `json:"office_id"`
	OccurredAt string         `json:"occurred_at"`
	Channel    events.Channel `json:"channel"`
}

// line returns the next input line, happening at now.
func (g *generator) line(now time.Time) []byte { return g.lineAt("", now) }

// lineAt returns the next input line, happening at now at office, or at the
// office the mix draws when office is empty.
func (g *generator) lineAt(officeID string, now time.Time) []byte {
	l := line{Type: events.TypeEnrolment, Channel: events.ChannelCounter}
	var r resident
	if g.rng.Float64() < enrolmentShare {
		r = g.newResident()
	} else {
		l.Type = events.TypeActivation
		r = g.activating()
	}
	office := r.city
	if l.Type == events.TypeActivation {
		switch x := g.rng.Float64(); {
		case x < awayShare:
			office = g.awayFrom(r.city)
		case x < awayShare+outreachShare:
			l.Channel = events.ChannelOutreach
		}
	}
	c := g.cities[office]
	l.NIK = r.nik
	l.OfficeID = strings.ReplaceAll(c.Code, ".", "") + "-OFF-01"
	if officeID != "" {
		l.OfficeID = officeID
	}
	l.OccurredAt = now.In(zone(c.ProvinceCode)).Format(occurredAtLayout)
	data, _ := json.Marshal(l) // strings only: cannot fail
	return data
}

// activating returns a resident who activates: now and then one who did
// before, else someone new, who is remembered for a later repeat.
func (g *generator) activating() resident {
	if g.rng.Float64() < repeatShare && len(g.recent) == recentSize {
		// The older half of the ring starts at next.
		return g.recent[(g.next+g.rng.IntN(recentSize/2))%recentSize]
	}
	r := g.newResident()
	if len(g.recent) < recentSize {
		g.recent = append(g.recent, r)
	} else {
		g.recent[g.next] = r
	}
	g.next = (g.next + 1) % recentSize
	return r
}

// newResident draws a domicile city weighted by its number of districts,
// then a district of it, a birth date, a sex and a serial.
func (g *generator) newResident() resident {
	city := g.weightedCity()
	c := g.cities[city]
	ds := g.districts[city]
	d := ds[g.rng.IntN(len(ds))]
	birth := firstBirth.AddDate(0, 0, g.rng.IntN(birthDays))
	female := g.rng.IntN(2) == 1
	serial := 1 + g.rng.IntN(9999)
	return resident{nik: nik.Format(c.ProvinceCode, c.Code, d.Code, birth, female, serial), city: city}
}

func (g *generator) weightedCity() int {
	x := g.rng.IntN(g.cum[len(g.cum)-1])
	return sort.SearchInts(g.cum, x+1)
}

// awayFrom draws an office city, by the same weights, in another province
// than home's.
func (g *generator) awayFrom(home int) int {
	for {
		city := g.weightedCity()
		if g.cities[city].ProvinceCode != g.cities[home].ProvinceCode {
			return city
		}
	}
}
