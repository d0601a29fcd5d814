package chhttp

import (
	"fmt"
	"sync"
	"time"

	"github.com/ikd-pipeline/ikd/internal/engine"
)

// session is a client's ClickHouse session: an engine connection of its
// own, so that its SET, USE and temporary tables stay in it.
type session struct {
	conn     *engine.Conn
	busy     bool
	lastUsed time.Time
	timeout  time.Duration
}

// sessions holds the open sessions by user and session_id, as ClickHouse
// does: one user cannot reach another's session.
type sessions struct {
	mu      sync.Mutex
	open    map[string]*session
	max     int
	now     func() time.Time
	connect func() (*engine.Conn, error)
}

func sessionKey(user, id string) string { return user + "\x00" + id }

// acquire hands out the session, creating it unless check is set; a
// session in use by another request is locked, as in ClickHouse.
func (ss *sessions) acquire(key, id string, timeout time.Duration, check bool) (*session, error) {
	ss.expire()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s, ok := ss.open[key]; ok {
		if s.busy {
			return nil, newErr(373, fmt.Sprintf("Session %s is locked by a concurrent client. (SESSION_IS_LOCKED)", id))
		}
		s.busy, s.timeout = true, timeout
		return s, nil
	}
	if check {
		return nil, newErr(372, fmt.Sprintf("Session %s not found. (SESSION_NOT_FOUND)", id))
	}
	if len(ss.open) >= ss.max {
		return nil, newErr(202, fmt.Sprintf("Too many open sessions (%d). (TOO_MANY_SIMULTANEOUS_QUERIES)", ss.max))
	}
	conn, err := ss.connect()
	if err != nil {
		return nil, err
	}
	s := &session{conn: conn, busy: true, timeout: timeout}
	ss.open[key] = s
	return s, nil
}

// release puts a session down; one that could not be put back as it was
// after a request is closed rather than handed out again.
func (ss *sessions) release(key string, s *session) {
	ss.mu.Lock()
	s.busy, s.lastUsed = false, ss.now()
	broken := s.conn.Broken()
	if broken {
		delete(ss.open, key)
	}
	ss.mu.Unlock()
	if broken {
		s.conn.Close()
	}
}

// expire closes the sessions idle for longer than their timeout.
func (ss *sessions) expire() {
	ss.mu.Lock()
	var stale []*session
	now := ss.now()
	for key, s := range ss.open {
		if !s.busy && now.Sub(s.lastUsed) > s.timeout {
			stale = append(stale, s)
			delete(ss.open, key)
		}
	}
	ss.mu.Unlock()
	for _, s := range stale {
		s.conn.Close()
	}
}

// closeAll ends every idle session; used when the server stops.
func (ss *sessions) closeAll() {
	ss.mu.Lock()
	var all []*session
	for key, s := range ss.open {
		if !s.busy {
			all = append(all, s)
			delete(ss.open, key)
		}
	}
	ss.mu.Unlock()
	for _, s := range all {
		s.conn.Close()
	}
}
