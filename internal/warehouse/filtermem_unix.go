//go:build unix

package warehouse

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// filterWords returns n zeroed words outside the Go heap. The filter is one
// large, long-lived object without pointers: on the heap the collector would
// let garbage grow by as much again before collecting (GOGC), doubling what
// the filter costs the process.
func filterWords(n int) ([]atomic.Uint64, error) {
	mem, err := syscall.Mmap(-1, 0, n*8, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("map %d bytes for the ledger's filter: %w", n*8, err)
	}
	return unsafe.Slice((*atomic.Uint64)(unsafe.Pointer(&mem[0])), n), nil
}
