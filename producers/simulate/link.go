package simulate

import (
	"errors"
	"io"
	"net"
	"sync"
)

// Link is an office's network link to the data centre, for demonstrations
// and tests: a TCP relay to the broker that can be cut and restored. Cut
// closes every connection through it and refuses new ones until Restore, as
// a dropped line does, without touching the broker or the agent.
type Link struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	up    bool
	conns map[net.Conn]struct{}
}

// NewLink listens on a free loopback port and relays to target (host:port).
func NewLink(target string) (*Link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &Link{ln: ln, target: target, up: true, conns: map[net.Conn]struct{}{}}
	go l.accept()
	return l, nil
}

// Addr is the address to dial instead of the broker's.
func (l *Link) Addr() string { return l.ln.Addr().String() }

// Up reports whether the link carries traffic.
func (l *Link) Up() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up
}

// Cut drops every connection and refuses new ones.
func (l *Link) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.up = false
	for c := range l.conns {
		c.Close()
	}
	clear(l.conns)
}

// Restore lets connections through again.
func (l *Link) Restore() {
	l.mu.Lock()
	l.up = true
	l.mu.Unlock()
}

// Close stops the relay and drops its connections.
func (l *Link) Close() error {
	l.Cut()
	return l.ln.Close()
}

func (l *Link) accept() {
	for {
		c, err := l.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		go l.relay(c)
	}
}

// relay joins c to a new connection to the target while the link is up.
func (l *Link) relay(c net.Conn) {
	if !l.Up() {
		c.Close()
		return
	}
	t, err := net.Dial("tcp", l.target)
	if err != nil {
		c.Close()
		return
	}
	if !l.track(c, t) {
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(t, c)
	go pipe(c, t)
	<-done
	c.Close()
	t.Close()
	l.mu.Lock()
	delete(l.conns, c)
	delete(l.conns, t)
	l.mu.Unlock()
}

// track registers both ends, unless the link went down meanwhile.
func (l *Link) track(conns ...net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.up {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		l.conns[c] = struct{}{}
	}
	return true
}
