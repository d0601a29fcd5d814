package chhttp

import (
	"maps"
	"slices"
	"strings"
	"sync"
)

// parses remembers the engine's parse of recent statements. The guard asks
// the engine twice per request (formatQuery, then EXPLAIN AST), which costs
// about as much as reading a small table, and clients send the same
// statements again and again: the aggregator's inserts, a
// dashboard's reads. The parse depends only on the text and its query
// parameters; what the guard decides from it also depends on the user and on
// the host's files, so it is decided again for every request.
type parses struct {
	mu      sync.Mutex
	max     int
	entries map[string]parse
}

// parse is a statement as the engine parsed it.
type parse struct {
	formatted string   // formatQuery's canonical text
	root      *astNode // EXPLAIN AST's tree; read only once stored
}

const (
	maxParses       = 256
	maxParseKeySize = 8 << 10 // a larger statement, with its parameters, is parsed every time
)

func newParses(max int) *parses { return &parses{max: max, entries: map[string]parse{}} }

// parseKey is the key of sql with params, and false when it is too large to keep.
func parseKey(sql string, params map[string]string) (string, bool) {
	size := len(sql)
	for k, v := range params {
		size += len(k) + len(v) + 2
	}
	if size > maxParseKeySize {
		return "", false
	}
	var b strings.Builder
	b.Grow(size + 1)
	b.WriteString(sql)
	for _, k := range slices.Sorted(maps.Keys(params)) {
		b.WriteByte(0)
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params[k])
	}
	return b.String(), true
}

func (ps *parses) get(key string) (parse, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok := ps.entries[key]
	return p, ok
}

// put keeps p, making room by forgetting an arbitrary statement: the ones
// sent again soon come back on their next request.
func (ps *parses) put(key string, p parse) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if len(ps.entries) >= ps.max {
		for k := range ps.entries {
			delete(ps.entries, k)
			break
		}
	}
	ps.entries[key] = p
}
