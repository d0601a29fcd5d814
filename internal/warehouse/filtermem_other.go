//go:build !unix

package warehouse

import "sync/atomic"

// filterWords returns n zeroed words, on the Go heap where memory cannot be
// mapped.
func filterWords(n int) ([]atomic.Uint64, error) { return make([]atomic.Uint64, n), nil }
