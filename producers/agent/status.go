package agent

import (
	"fmt"
	"io"
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

// writeMetrics writes s in Prometheus' text format.
func writeMetrics(w io.Writer, s Status) {
	up := 0
	if s.Link == spool.LinkUp {
		up = 1
	}
	var lastForward float64
	if s.LastForwardAt != nil {
		lastForward = float64(s.LastForwardAt.UnixMilli()) / 1000
	}
	metric := func(name, typ, help string, value any) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s{office=%q} %v\n", name, help, name, typ, name, s.OfficeID, value)
	}
	metric("ikd_agent_waiting_events", "gauge", "Events accepted and not yet acknowledged by the broker.", s.WaitingEvents)
	metric("ikd_agent_waiting_bytes", "gauge", "Bytes of the waiting events in the spool.", s.WaitingBytes)
	metric("ikd_agent_spool_limit_bytes", "gauge", "The most the waiting events may take.", s.SpoolLimitBytes)
	metric("ikd_agent_oldest_waiting_age_seconds", "gauge", "Age of the oldest waiting event, 0 if none.", s.OldestWaitingSecs)
	metric("ikd_agent_link_up", "gauge", "1 if the broker takes events, else 0.", up)
	metric("ikd_agent_last_forward_timestamp_seconds", "gauge", "When the broker last acknowledged events, 0 if never since start.", lastForward)
	metric("ikd_agent_forwarded_events_total", "counter", "Events the broker acknowledged since start.", s.ForwardedTotal)
	metric("ikd_agent_accepted_events_total", "counter", "Events accepted into the spool since start.", s.AcceptedTotal)
	metric("ikd_agent_invalid_events_total", "counter", "Input lines rejected as invalid since start.", s.InvalidTotal)
	metric("ikd_agent_refused_full_events_total", "counter", "Valid events refused because the spool was full, since start.", s.RefusedFullTotal)
	metric("ikd_agent_set_aside_events", "gauge", "Events the broker refused for good, kept in the set-aside file.", s.SetAside)
}
