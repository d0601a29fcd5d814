package main

import (
	"bufio"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"
)

// memSampler records the peak Go heap in use (objects plus fragmentation
// inside spans, the runtime/metrics equivalent of MemStats.HeapInuse) every
// 50 ms while a window is open. runtime/metrics reads do not stop the world.
type memSampler struct {
	mu     sync.Mutex
	open   bool
	peak   uint64
	stop   chan struct{}
	stopWG sync.WaitGroup
}

var heapMetrics = []string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes"}

func heapInuse() uint64 {
	s := []metrics.Sample{{Name: heapMetrics[0]}, {Name: heapMetrics[1]}}
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64()
}

func startSampler() *memSampler {
	m := &memSampler{stop: make(chan struct{})}
	m.stopWG.Add(1)
	go func() {
		defer m.stopWG.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				h := heapInuse()
				m.mu.Lock()
				if m.open && h > m.peak {
					m.peak = h
				}
				m.mu.Unlock()
			}
		}
	}()
	return m
}

func (m *memSampler) openWindow() {
	m.mu.Lock()
	m.open, m.peak = true, heapInuse()
	m.mu.Unlock()
}

func (m *memSampler) closeWindow() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.open = false
	if h := heapInuse(); h > m.peak {
		m.peak = h
	}
	return m.peak
}

func (m *memSampler) close() { close(m.stop); m.stopWG.Wait() }

// procStatus reads a kB field such as VmHWM or VmRSS of this process, in bytes.
func procStatus(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// resetHWM resets the kernel's peak-RSS mark (VmHWM) to the current RSS, so
// that a later VmHWM covers only what follows (Linux >= 4.0, clear_refs 5).
func resetHWM() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

func (m *memSampler) peakSoFar() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h := heapInuse(); h > m.peak {
		m.peak = h
	}
	return m.peak
}
