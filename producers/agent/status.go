package agent

import (
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ikd-pipeline/ikd/producers/spool"
)

// Link states of Status beyond the spool's: the agent has not reached the
// broker since it started.
const LinkConnecting = "connecting"

// Status is what GET /v1/status answers: what an office operator needs.
type Status struct {
	OfficeID  string `json:"office_id"`
	Accepting bool   `json:"accepting"` // false while stopping

	WaitingEvents     int        `json:"waiting_events"` // accepted, not yet acknowledged by the broker
	WaitingBytes      int64      `json:"waiting_bytes"`
	SpoolLimitBytes   int64      `json:"spool_limit_bytes"`
	OldestReceivedAt  *time.Time `json:"oldest_waiting_received_at,omitempty"`
	OldestWaitingSecs float64    `json:"oldest_waiting_age_seconds"`

	Link           string     `json:"link"` // up, down, connecting or unknown
	LinkSince      *time.Time `json:"link_since,omitempty"`
	LinkError      string     `json:"link_error,omitempty"`
	LastForwardAt  *time.Time `json:"last_forward_at,omitempty"`
	ForwardedTotal int64      `json:"forwarded_events"` // since the agent started

	AcceptedTotal    int64 `json:"accepted_events"`     // since the agent started
	InvalidTotal     int64 `json:"invalid_events"`      // lines answered 400, since the agent started
	RefusedFullTotal int64 `json:"refused_full_events"` // valid events answered 507, since the agent started

	SetAside     int              `json:"set_aside_events"` // refused by the broker for good, kept in SetAsideFile
	SetAsideFile string           `json:"set_aside_file"`
	LastSetAside *spool.Rejection `json:"last_set_aside,omitempty"`
}

// Status returns the agent's state now.
func (a *Agent) Status() Status {
	conn := ""
	if nc := a.nc.Load(); nc != nil {
		conn = nc.Status().String()
	}
	c := totals{a.counts.accepted.Load(), a.counts.invalid.Load(), a.counts.refusedFull.Load()}
	s := status(a.cfg.OfficeID, !a.stopping.Load(), conn, a.spool.Stats(), c, a.now())
	if msg := a.dialErr.Load(); conn == "" && msg != nil {
		s.LinkError = *msg
	}
	return s
}

type totals struct{ accepted, invalid, refusedFull int64 }

// status puts together the spool's stats and the connection's state, conn
// (empty before the first connect), as of now.
func status(office string, accepting bool, conn string, st spool.Stats, c totals, now time.Time) Status {
	s := Status{
		OfficeID: office, Accepting: accepting,
		WaitingEvents: st.WaitingEvents, WaitingBytes: st.WaitingBytes, SpoolLimitBytes: st.LimitBytes,
		ForwardedTotal: st.Forwarded,
		AcceptedTotal:  c.accepted, InvalidTotal: c.invalid, RefusedFullTotal: c.refusedFull,
		SetAside: st.SetAside, SetAsideFile: st.RejectedFile, LastSetAside: st.LastSetAside,
	}
	if !st.Oldest.IsZero() {
		s.OldestReceivedAt = timePtr(st.Oldest)
		s.OldestWaitingSecs = max(now.Sub(st.Oldest).Seconds(), 0)
	}
	s.LastForwardAt = timePtr(st.LastForward)
	s.Link, s.LinkSince, s.LinkError = link(conn, st)
	return s
}

// link judges the link from the connection's state and the last attempt to
// forward: a connection that is not up is down whatever the last attempt
// said, and one that is up with nothing tried yet is up.
func link(conn string, st spool.Stats) (string, *time.Time, string) {
	switch {
	case conn == "":
		return LinkConnecting, nil, st.LinkError
	case conn != nats.CONNECTED.String():
		return spool.LinkDown, timePtr(st.LinkSince), "connection to the broker is " + conn
	case st.Link == spool.LinkUnknown:
		return spool.LinkUp, nil, ""
	default:
		return st.Link, timePtr(st.LinkSince), st.LinkError
	}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
