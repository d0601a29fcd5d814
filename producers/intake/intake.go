// Package intake turns what a counter application sends, JSON Lines or a
// JSON array of input objects, into events: the same rules for a file given
// to `ikd-counter publish` and for a request to the office agent.
package intake

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/nik"
)

// MaxLine bounds an input line; longer ones are rejected unread, as a valid
// line is a few hundred bytes.
const MaxLine = 64 << 10

// Rejection is why an input line was rejected, as "<reason>: <detail>". Like
// *events.Error it never holds the NIK.
type Rejection struct {
	Reason events.Reason
	Detail string
}

func (r *Rejection) Error() string { return string(r.Reason) + ": " + r.Detail }

// ReasonWrongOffice rejects a line of another office than the agent's.
const ReasonWrongOffice events.Reason = "wrong_office"

// Office builds the input lines of one office, or of any office when OfficeID
// is empty. Builder is required; Now defaults to time.Now.
type Office struct {
	Builder  *events.Builder
	OfficeID string
	Now      func() time.Time
}

// Build validates one line and returns its event, stamped with the time it
// was received. A line without office_id is the office's own. Errors are
// *Rejection, or another error for a fault that is not the line's.
func (o *Office) Build(line []byte, tooLong bool) (events.Event, error) {
	if tooLong {
		return events.Event{}, &Rejection{events.ReasonOversized, fmt.Sprintf("longer than %d bytes", MaxLine)}
	}
	ev, err := o.Builder.Build(o.withOffice(line))
	var e *events.Error
	if errors.As(err, &e) {
		return events.Event{}, &Rejection{e.Reason, detail(e)}
	}
	if err != nil {
		return events.Event{}, err
	}
	if o.OfficeID != "" && ev.OfficeID != o.OfficeID {
		return events.Event{}, &Rejection{ReasonWrongOffice, fmt.Sprintf("office_id: %s, this agent serves office %s", ev.OfficeID, o.OfficeID)}
	}
	ev.ReceivedAt = o.now().UTC()
	return ev, nil
}

func (o *Office) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

// withOffice adds the office's id to a line object that has none, so that a
// counter application need not know it.
func (o *Office) withOffice(line []byte) []byte {
	if o.OfficeID == "" || bytes.Contains(line, []byte(`"office_id"`)) {
		return line
	}
	trimmed := bytes.TrimLeft(line, " \t")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return line
	}
	out := make([]byte, 0, len(trimmed)+len(o.OfficeID)+16)
	out = append(out, `{"office_id":`...)
	out = strconv.AppendQuote(out, o.OfficeID)
	rest := bytes.TrimLeft(trimmed[1:], " \t")
	if len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...)
}

// detail names the field and what is wrong with it; for a NIK, the reason
// nik.Parse gave, which names region codes at most.
func detail(e *events.Error) string {
	d := e.Detail
	var ne *nik.Error
	if errors.As(e, &ne) {
		d = ne.Detail
	}
	switch {
	case e.Field == "":
		return d
	case d == "":
		return e.Field
	default:
		return e.Field + ": " + d
	}
}

// Lines calls fn with each non-blank line of r, numbered from 1, without its
// line ending. A line longer than MaxLine is passed empty, with tooLong.
func Lines(r io.Reader, fn func(n int, line []byte, tooLong bool) error) error {
	br := bufio.NewReaderSize(r, MaxLine+2) // the line, then "\r\n"
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		tooLong := false
		for errors.Is(err, bufio.ErrBufferFull) {
			tooLong = true
			_, err = br.ReadSlice('\n')
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read line %d: %w", n, err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if tooLong {
			line = nil
		}
		if len(bytes.TrimSpace(line)) > 0 || tooLong {
			if ferr := fn(n, line, tooLong); ferr != nil {
				return ferr
			}
		}
		if err != nil { // io.EOF
			return nil
		}
	}
}

// Items calls fn with each element of a JSON array in data, numbered from 1,
// or with data itself, numbered 1, when it is a single JSON value. An array
// that is not well-formed is one malformed item.
func Items(data []byte, fn func(n int, item []byte, tooLong bool) error) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return fn(1, trimmed, len(trimmed) > MaxLine)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(trimmed, &items); err != nil {
		return fn(1, trimmed, false)
	}
	for i, item := range items {
		if err := fn(i+1, item, len(item) > MaxLine); err != nil {
			return err
		}
	}
	return nil
}
