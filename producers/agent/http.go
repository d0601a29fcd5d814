package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/producers/intake"
	"github.com/ikd-pipeline/ikd/producers/spool"
)

// retryAfter is the seconds a counter application is told to wait before it
// sends again events the agent could not take.
const retryAfter = "5"

// Handler serves POST /v1/events, GET /v1/status, and GET /metrics, /healthz
// and /readyz (ready while the agent takes events).
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events", a.postEvents)
	mux.HandleFunc("GET /v1/status", a.getStatus)
	a.observer().Route(mux)
	return mux
}

// Accepted is an event the agent holds durably.
type Accepted struct {
	Line    int    `json:"line"`
	EventID string `json:"event_id"`
}

// Invalid is an input line that breaks the contract; it will never pass.
type Invalid struct {
	Line   int           `json:"line"`
	Reason events.Reason `json:"reason"`
	Detail string        `json:"detail"`
}

// Response is the body of every answer to POST /v1/events. Line is the line
// of a JSON Lines body, or the position in a JSON array, from 1.
type Response struct {
	Accepted []Accepted `json:"accepted"`
	Invalid  []Invalid  `json:"invalid"`
	// NotTaken are valid events the agent could not take now (507, 503):
	// send them again later.
	NotTaken []Accepted `json:"not_taken,omitempty"`
	Error    string     `json:"error,omitempty"`
}

func (a *Agent) postEvents(w http.ResponseWriter, r *http.Request) {
	if a.stopping.Load() {
		a.answer(w, http.StatusServiceUnavailable, Response{Error: "the agent is stopping; send again shortly"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		a.answer(w, http.StatusRequestEntityTooLarge, Response{Error: fmt.Sprintf("the body is larger than %d bytes; send fewer events per request", tooLarge.Limit)})
		return
	case err != nil:
		a.answer(w, http.StatusBadRequest, Response{Error: fmt.Sprintf("read body: %v", err)})
		return
	}
	evs, lines, res := a.build(r.Header.Get("Content-Type"), body)
	if len(evs) == 0 && len(res.Invalid) == 0 {
		a.answer(w, http.StatusBadRequest, Response{Error: "no events in the body: send JSON Lines or a JSON array of input objects"})
		return
	}
	a.counts.invalid.Add(int64(len(res.Invalid)))
	n, err := a.spool.AppendAll(evs)
	for i := range evs {
		item := Accepted{Line: lines[i], EventID: evs[i].EventID}
		if i < n {
			res.Accepted = append(res.Accepted, item)
		} else {
			res.NotTaken = append(res.NotTaken, item)
		}
	}
	a.counts.accepted.Add(int64(n))
	a.answer(w, a.judge(err, &res), res)
}

// judge returns the status of a request whose append ended with err, and
// says why in res.
func (a *Agent) judge(err error, res *Response) int {
	switch {
	case err == nil && len(res.Invalid) == 0:
		return http.StatusAccepted
	case err == nil:
		return http.StatusBadRequest
	case errors.Is(err, spool.ErrFull):
		a.counts.refusedFull.Add(int64(len(res.NotTaken)))
		res.Error = err.Error()
		return http.StatusInsufficientStorage
	default:
		a.failed(err)
		res.Error = "the spool failed; the agent restarts: " + err.Error()
		return http.StatusServiceUnavailable
	}
}

// build turns a body into events: a JSON array, a single JSON object sent as
// application/json, or else JSON Lines.
func (a *Agent) build(contentType string, body []byte) ([]events.Event, []int, Response) {
	var res Response
	var evs []events.Event
	var lines []int
	each := func(n int, line []byte, tooLong bool) error {
		ev, err := a.office.Build(line, tooLong)
		var rej *intake.Rejection
		switch {
		case errors.As(err, &rej):
			res.Invalid = append(res.Invalid, Invalid{Line: n, Reason: rej.Reason, Detail: rej.Detail})
		case err != nil:
			res.Invalid = append(res.Invalid, Invalid{Line: n, Reason: events.ReasonInvalidField, Detail: err.Error()})
		default:
			evs, lines = append(evs, ev), append(lines, n)
		}
		return nil
	}
	if isJSONValue(contentType, body) {
		_ = intake.Items(body, each)
	} else {
		_ = intake.Lines(bytes.NewReader(body), each)
	}
	return evs, lines, res
}

// isJSONValue reports whether body is one JSON value rather than JSON Lines:
// an array, or a single value sent as application/json.
func isJSONValue(contentType string, body []byte) bool {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		return true
	}
	media, _, _ := mime.ParseMediaType(contentType)
	return media == "application/json" && json.Valid(trimmed)
}

func (a *Agent) answer(w http.ResponseWriter, status int, res Response) {
	// Empty lists, not null, for clients that iterate over them.
	if res.Accepted == nil {
		res.Accepted = []Accepted{}
	}
	if res.Invalid == nil {
		res.Invalid = []Invalid{}
	}
	if status == http.StatusServiceUnavailable || status == http.StatusInsufficientStorage {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, status, res)
}

func (a *Agent) getStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.Status())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)+1))
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}
