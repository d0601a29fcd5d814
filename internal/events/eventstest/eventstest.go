// Package eventstest makes valid events for the tests of packages that carry
// them without looking inside (publishers, spools).
package eventstest

import (
	"fmt"
	"time"

	"github.com/ikd-pipeline/ikd/internal/events"
)

// Activations returns n distinct valid activations of residents of Kota
// Bengkulu, one second apart, whose ids are prefix-00000, prefix-00001, ...
func Activations(prefix string, n int) []events.Event {
	evs := make([]events.Event, n)
	at := time.Date(2023, 2, 13, 2, 30, 0, 0, time.UTC)
	for i := range evs {
		evs[i] = events.Event{
			V:            events.Version,
			EventID:      fmt.Sprintf("%s-%05d", prefix, i),
			Type:         events.TypeActivation,
			Resident:     fmt.Sprintf("%032x", i),
			ProvinceCode: "17",
			CityCode:     "17.71",
			DistrictCode: "17.71.01",
			OfficeID:     "1771-OFF-01",
			Channel:      events.ChannelCounter,
			OccurredAt:   at.Add(time.Duration(i) * time.Second),
		}
	}
	return evs
}
