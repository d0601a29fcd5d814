package warehouse

import "sync/atomic"

// The filter's workings, for the tests of package warehouse_test, which
// start a warehouse (a package test of warehouse cannot: testenv imports
// warehouse).

// CertainlyNew reports whether w's filter knows the ledger cannot hold the
// resident (a pseudonym) of typ in year.
func CertainlyNew(w *EventWriter, typ string, year uint16, resident string) bool {
	return w.seen.Load().certainlyNew(ledgerKey{typ, year, KeyOf(resident)})
}

// Filter is a seenFilter of size bytes covering the years from on, ready.
type Filter struct{ f *seenFilter }

func NewFilter(size int, from uint16) Filter {
	f := newSeenFilter(make([]atomic.Uint64, filterLen(size)), from)
	f.ready.Store(true)
	return Filter{f}
}

func (f Filter) Add(typ string, year uint16, resident ResidentKey) {
	f.f.add(ledgerKey{typ, year, resident})
}

func (f Filter) CertainlyNew(typ string, year uint16, resident ResidentKey) bool {
	return f.f.certainlyNew(ledgerKey{typ, year, resident})
}

// ResidentRanges are the slices, by first byte from and to, in which a load
// of keys reads the residents.
func ResidentRanges(keys uint64) [][2]int {
	var out [][2]int
	for _, r := range residentRanges(keys) {
		out = append(out, [2]int{r.lo, r.hi})
	}
	return out
}
