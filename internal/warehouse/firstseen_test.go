package warehouse_test

import (
	"crypto/md5"
	"slices"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

const (
	residentA = "a56d4d1ebd5fc6e37e5a80aca72347eb"
	residentB = "0123456789abcdef0123456789abcdef"
)

func day(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

func counted(typ string, year uint16, resident, city string) warehouse.Counted {
	return warehouse.Counted{Type: typ, Year: year, Province: city[:2], City: city, Resident: warehouse.KeyOf(resident)}
}

func seen(typ string, year uint16, resident, d, city string) warehouse.Sighting {
	return warehouse.Sighting{Counted: counted(typ, year, resident, city), Day: day(d)}
}

func transition(typ string, year uint16, resident, d, city string, sign int8) warehouse.Transition {
	return warehouse.Transition{Counted: counted(typ, year, resident, city), Day: day(d), Sign: sign}
}

func TestTransitionsCountEachResidentOnceAtTheirEarliestPlace(t *testing.T) {
	const act, enr = "activation", "enrolment"
	for _, tc := range []struct {
		name    string
		current map[warehouse.Counted]time.Time
		batch   []warehouse.Sighting
		want    []warehouse.Transition
	}{
		{
			name:  "a new resident is counted where first seen",
			batch: []warehouse.Sighting{seen(act, 2025, residentA, "2025-03-02", "17.71")},
			want:  []warehouse.Transition{transition(act, 2025, residentA, "2025-03-02", "17.71", 1)},
		},
		{
			name:    "the same day again changes nothing",
			current: map[warehouse.Counted]time.Time{counted(act, 2025, residentA, "17.71"): day("2025-03-02")},
			batch:   []warehouse.Sighting{seen(act, 2025, residentA, "2025-03-02", "17.71")},
		},
		{
			name:    "a later day changes nothing",
			current: map[warehouse.Counted]time.Time{counted(act, 2025, residentA, "17.71"): day("2025-03-02")},
			batch:   []warehouse.Sighting{seen(act, 2025, residentA, "2025-05-20", "17.71")},
		},
		{
			name:    "an earlier day arriving late moves the resident",
			current: map[warehouse.Counted]time.Time{counted(act, 2025, residentA, "17.71"): day("2025-03-02")},
			batch:   []warehouse.Sighting{seen(act, 2025, residentA, "2025-02-13", "17.71")},
			want: []warehouse.Transition{
				transition(act, 2025, residentA, "2025-03-02", "17.71", -1),
				transition(act, 2025, residentA, "2025-02-13", "17.71", 1),
			},
		},
		{
			name: "two events of one resident in a batch count once, at the earlier",
			batch: []warehouse.Sighting{
				seen(act, 2025, residentA, "2025-04-01", "17.71"),
				seen(act, 2025, residentA, "2025-03-01", "17.71"),
			},
			want: []warehouse.Transition{transition(act, 2025, residentA, "2025-03-01", "17.71", 1)},
		},
		{
			name: "a resident whose events name two cities counts in each",
			batch: []warehouse.Sighting{
				seen(act, 2025, residentA, "2025-03-01", "17.71"),
				seen(act, 2025, residentA, "2025-03-02", "17.02"),
			},
			want: []warehouse.Transition{
				transition(act, 2025, residentA, "2025-03-02", "17.02", 1),
				transition(act, 2025, residentA, "2025-03-01", "17.71", 1),
			},
		},
		{
			name:    "last year's event arriving in January opens last year only",
			current: map[warehouse.Counted]time.Time{counted(act, 2026, residentA, "17.71"): day("2026-01-05")},
			batch:   []warehouse.Sighting{seen(act, 2025, residentA, "2025-12-31", "17.71")},
			want:    []warehouse.Transition{transition(act, 2025, residentA, "2025-12-31", "17.71", 1)},
		},
		{
			name:    "enrolment and activation are counted apart",
			current: map[warehouse.Counted]time.Time{counted(enr, 2025, residentA, "17.71"): day("2025-01-10")},
			batch: []warehouse.Sighting{
				seen(act, 2025, residentA, "2025-01-03", "17.71"),
				seen(enr, 2025, residentA, "2025-01-20", "17.71"),
			},
			want: []warehouse.Transition{transition(act, 2025, residentA, "2025-01-03", "17.71", 1)},
		},
		{
			name:    "residents are counted apart",
			current: map[warehouse.Counted]time.Time{counted(act, 2025, residentA, "17.71"): day("2025-01-10")},
			batch: []warehouse.Sighting{
				seen(act, 2025, residentB, "2025-01-11", "18.71"),
				seen(act, 2025, residentA, "2025-01-11", "17.71"),
			},
			want: []warehouse.Transition{transition(act, 2025, residentB, "2025-01-11", "18.71", 1)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := warehouse.Transitions(tc.current, tc.batch)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			// Applied, the same batch again finds nothing to do.
			after := copyOf(tc.current)
			for _, tr := range got {
				if tr.Sign > 0 {
					after[tr.Counted] = tr.Day
				}
			}
			if again := warehouse.Transitions(after, tc.batch); len(again) != 0 {
				t.Errorf("the batch again over the updated ledger gives %+v, want nothing", again)
			}
		})
	}
}

func copyOf(m map[warehouse.Counted]time.Time) map[warehouse.Counted]time.Time {
	out := map[warehouse.Counted]time.Time{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestSightingsTakeTheirDayAndYearInWIB(t *testing.T) {
	for _, tc := range []struct {
		at   string
		day  string
		year uint16
	}{
		{"2024-12-31T16:59:59Z", "2024-12-31", 2024},
		{"2024-12-31T17:00:00Z", "2025-01-01", 2025},
		{"2025-06-30T23:30:00Z", "2025-07-01", 2025},
	} {
		at, _ := time.Parse(time.RFC3339, tc.at)
		s := warehouse.SightingOf(warehouse.Record{Event: events.Event{Type: "activation", Resident: residentA, CityCode: "17.71", ProvinceCode: "17", OccurredAt: at}})
		if s.Year != tc.year || !s.Day.Equal(day(tc.day)) {
			t.Errorf("%s: year %d day %s, want %d %s", tc.at, s.Year, s.Day.Format(time.DateOnly), tc.year, tc.day)
		}
	}
}

func TestResidentKeyIsThePseudonymsBytesOrTheMD5OfOtherText(t *testing.T) {
	if k := warehouse.KeyOf(residentB); k != [16]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef} {
		t.Errorf("hex pseudonym: %x", k)
	}
	for _, other := range []string{"forged", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcdeg"} {
		if k := warehouse.KeyOf(other); k != warehouse.ResidentKey(md5.Sum([]byte(other))) {
			t.Errorf("%q: %x, want its MD5", other, k)
		}
	}
}

func TestNewestRowsKeepTheLatestEventOfEachTypeCityAndDay(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			panic(err)
		}
		return v
	}
	sighting := func(typ, resident, d, city, when string) warehouse.Sighting {
		s := seen(typ, 2025, resident, d, city)
		s.At = at(when)
		return s
	}
	newest := func(typ, d, city, when string) warehouse.Newest {
		return warehouse.Newest{Type: typ, Year: 2025, Province: city[:2], City: city, Day: day(d), At: at(when)}
	}
	got := warehouse.NewestOf([]warehouse.Sighting{
		sighting("activation", residentA, "2025-03-02", "17.71", "2025-03-02 02:00"),
		sighting("activation", residentB, "2025-03-02", "17.71", "2025-03-02 09:00"), // newer, another resident
		sighting("activation", residentA, "2025-03-02", "17.71", "2025-03-02 05:00"),
		sighting("enrolment", residentA, "2025-03-02", "17.71", "2025-03-02 01:00"),  // another type
		sighting("activation", residentA, "2025-03-01", "17.71", "2025-03-01 10:00"), // another day
		sighting("activation", residentA, "2025-03-02", "18.71", "2025-03-02 03:00"), // another city
	})
	want := []warehouse.Newest{
		newest("activation", "2025-03-01", "17.71", "2025-03-01 10:00"),
		newest("activation", "2025-03-02", "17.71", "2025-03-02 09:00"),
		newest("activation", "2025-03-02", "18.71", "2025-03-02 03:00"),
		newest("enrolment", "2025-03-02", "17.71", "2025-03-02 01:00"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("NewestOf:\n got %v\nwant %v", got, want)
	}
	if got := warehouse.NewestOf(nil); len(got) != 0 {
		t.Errorf("no sightings gave rows %v", got)
	}
}
