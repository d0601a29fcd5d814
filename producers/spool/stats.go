package spool

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ikd-pipeline/ikd/internal/events"
)

// The states of the link to the broker, as forwarding found it.
const (
	LinkUnknown = "unknown" // nothing was forwarded or tried since Open
	LinkUp      = "up"      // the last attempt was acknowledged
	LinkDown    = "down"    // the last attempt failed for a passing reason; retrying
)

// linkState is what forwarding learnt of the link; guarded by Spool.mu.
type linkState struct {
	state       string
	since       time.Time // when state began
	lastErr     string    // why the last attempt failed, while down
	lastForward time.Time // when the broker last acknowledged events
	forwarded   int64     // events acknowledged since Open
	setAside    int       // lines of RejectedFile, this Open's and before
	lastAside   *Rejection
}

// Stats is what an office operator needs to know of the spool.
type Stats struct {
	WaitingEvents int       // accepted, not yet acknowledged by the broker
	WaitingBytes  int64     // their bytes on disk, framing included
	LimitBytes    int64     // the most WaitingBytes may reach
	Oldest        time.Time // when the oldest waiting event was received; zero if none or unknown
	Link          string    // LinkUnknown, LinkUp or LinkDown
	LinkSince     time.Time // when Link took its value; zero while unknown
	LinkError     string    // why forwarding fails, while LinkDown
	LastForward   time.Time // when the broker last acknowledged events; zero if never since Open
	Forwarded     int64     // events acknowledged since Open
	SetAside      int       // events the broker refused for good, in RejectedFile
	LastSetAside  *Rejection
	RejectedFile  string // the path of RejectedFile
	Syncs         int64  // fsyncs that made appends durable since Open; several appends share one
}

// Stats returns the spool's state now.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		WaitingEvents: s.waiting, WaitingBytes: s.used, LimitBytes: s.maxBytes,
		Link: s.link.state, LinkSince: s.link.since, LinkError: s.link.lastErr,
		LastForward: s.link.lastForward, Forwarded: s.link.forwarded,
		SetAside: s.link.setAside, LastSetAside: s.link.lastAside,
		RejectedFile: filepath.Join(s.dir, RejectedFile),
		Syncs:        s.syncs,
	}
	if s.waiting > 0 {
		st.Oldest = s.oldest
	}
	return st
}

// sawHead records the first waiting event, which forwarding has just read.
func (s *Spool) sawHead(ev events.Event) {
	s.mu.Lock()
	s.oldest = receivedAt(ev)
	s.mu.Unlock()
}

// linkIs records the outcome of an attempt to forward: cause nil for one the
// broker acknowledged.
func (s *Spool) linkIs(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	state := LinkUp
	s.link.lastErr = ""
	if cause != nil {
		state = LinkDown
		s.link.lastErr = cause.Error()
	}
	if s.link.state != state {
		s.link.state, s.link.since = state, time.Now()
	}
}

// acknowledged counts n events that the broker took or refused for good and
// that left the queue with size bytes.
func (s *Spool) acknowledged(n, refused int, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used -= size
	s.waiting -= n
	if n > refused {
		s.link.forwarded += int64(n - refused)
		s.link.lastForward = time.Now()
	}
}

// setAsideDone counts the rejections written to RejectedFile.
func (s *Spool) setAsideDone(set []Rejection) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.link.setAside += len(set)
	last := set[len(set)-1]
	s.link.lastAside = &last
}

// countRejected counts the lines of RejectedFile at Open, so that events set
// aside before a restart are still shown.
func countRejected(dir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(dir, RejectedFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			n++
		}
	}
	return n, sc.Err()
}
