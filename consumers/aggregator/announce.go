package aggregator

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/ikd-pipeline/ikd/internal/broker"
)

// ChangesSubject is where the aggregator announces each committed batch.
const ChangesSubject = broker.ChangesPrefix + ".batch"

// wib is Western Indonesia Time, in which the warehouse counts years.
var wib = time.FixedZone("WIB", 7*3600)

// Announcement says which regions a committed batch touched, so that
// consumers of IKD_CHANGES (the alerter) re-evaluate only those:
//
//	{"cities":["17.71","18.71"],"years":[2023],"events":120,"at":"2023-02-13T03:00:00Z"}
type Announcement struct {
	Cities []string  `json:"cities"` // distinct city codes, sorted
	Years  []int     `json:"years"`  // distinct years (WIB) of the events, sorted
	Events int       `json:"events"` // events written in the batch
	At     time.Time `json:"at"`     // when the batch was acknowledged (RFC 3339)
}

// announcement summarises a written batch.
func announcement(batch []pending, at time.Time) Announcement {
	cities := make([]string, 0, 4)
	years := make([]int, 0, 1)
	for _, p := range batch {
		if !slices.Contains(cities, p.record.CityCode) {
			cities = append(cities, p.record.CityCode)
		}
		if y := p.record.OccurredAt.In(wib).Year(); !slices.Contains(years, y) {
			years = append(years, y)
		}
	}
	slices.Sort(cities)
	slices.Sort(years)
	return Announcement{Cities: cities, Years: years, Events: len(batch), At: at.UTC().Truncate(time.Second)}
}

// announce publishes one announcement for a written and acknowledged batch.
// It never fails the batch: a lost announcement only delays the alerter until
// its next scheduled full evaluation.
func (a *Aggregator) announce(batch []pending) {
	if len(batch) == 0 || a.js == nil {
		return
	}
	data, err := json.Marshal(announcement(batch, time.Now()))
	if err != nil {
		a.logger.Warn("announce batch: encode", "err", err)
		return
	}
	future, err := a.js.PublishAsync(ChangesSubject, data)
	if err != nil {
		a.logger.Warn("announce batch: publish", "subject", ChangesSubject, "err", err)
		return
	}
	go func() {
		select {
		case <-future.Ok():
		case err := <-future.Err():
			a.logger.Warn("announce batch: not stored", "subject", ChangesSubject, "err", err)
		case <-time.After(time.Minute):
			a.logger.Warn("announce batch: no acknowledgement from the broker", "subject", ChangesSubject)
		}
	}()
}
