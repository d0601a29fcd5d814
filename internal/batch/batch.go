// Package batch gathers items into batches that close on a count or a time,
// whichever comes first.
package batch

import (
	"context"
	"time"
)

// Collect waits for a first item, then gathers more until it holds size
// items or maxWait has passed since the first arrived. next must honour its
// context: its deadline is how a batch closes on time. When next fails,
// Collect returns the items gathered so far with the error, so that nothing
// already taken is dropped.
func Collect[T any](ctx context.Context, size int, maxWait time.Duration, next func(context.Context) (T, error)) ([]T, error) {
	first, err := next(ctx)
	if err != nil {
		return nil, err
	}
	items := make([]T, 1, size)
	items[0] = first
	deadline, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	for len(items) < size {
		item, err := next(deadline)
		if err != nil {
			if deadline.Err() != nil && ctx.Err() == nil {
				return items, nil // the batch's time is up
			}
			return items, err
		}
		items = append(items, item)
	}
	return items, nil
}
