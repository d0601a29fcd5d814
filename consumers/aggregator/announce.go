package aggregator

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/ikd-pipeline/ikd/internal/contract"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/logsample"
)

// announcement summarises a written batch.
func announcement(batch []pending, at time.Time) contract.Announcement {
	// Sets, since a national batch of thousands of events spans hundreds of cities.
	cities := make(map[string]struct{}, 64)
	years := make(map[int]struct{}, 1)
	for _, p := range batch {
		cities[p.record.CityCode] = struct{}{}
		years[p.record.OccurredAt.In(events.WIB).Year()] = struct{}{}
	}
	return contract.Announcement{Cities: slices.Sorted(maps.Keys(cities)), Years: slices.Sorted(maps.Keys(years)),
		Events: len(batch), At: at.UTC().Truncate(time.Second)}
}

// announceTimeout bounds the wait for the broker to store an announcement;
// it lets a shutdown finish even when the broker is gone.
const announceTimeout = 2 * time.Second

// announce publishes one announcement for a written and acknowledged batch.
// It never fails the batch: a lost announcement only delays the alerter until
// its next scheduled full evaluation.
func (a *Aggregator) announce(ctx context.Context, batch []pending) {
	if len(batch) == 0 || a.js == nil {
		return
	}
	data, err := json.Marshal(announcement(batch, time.Now()))
	if err != nil {
		a.logger.Warn("announce batch: encode", "err", err)
		return
	}
	// Announcing even while shutting down keeps the alerter current.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), announceTimeout)
	defer cancel()
	if _, err := a.js.Publish(pctx, contract.ChangesSubject, data); err != nil {
		if n := a.announceFailures.Add(1); logsample.Due(n) {
			a.logger.Warn("announce batch: not stored", "subject", contract.ChangesSubject, "failures_total", n, "err", err)
		}
	}
}
