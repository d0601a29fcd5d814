package spool

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// RejectedFile, in the spool's directory, keeps the events that the broker
// refused for good, one Rejection as JSON per line, for a person to inspect
// and republish.
const RejectedFile = "rejected.jsonl"

// Rejection is a line of RejectedFile.
type Rejection struct {
	At      time.Time       `json:"at"`       // when the spool set the event aside
	Reason  string          `json:"reason"`   // the broker's refusal
	EventID string          `json:"event_id"` // the Nats-Msg-Id to republish it with
	Subject string          `json:"subject"`  // where it was published
	Event   json.RawMessage `json:"event"`    // the record as spooled: the message body
}

// setAside appends the records of b that the broker refused to RejectedFile,
// fsynced, before the cursor passes them: every event that leaves the queue
// is either acknowledged or written there. A crash before the cursor moves
// writes them again on the next attempt, so a line may occur twice.
func (s *Spool) setAside(b batch, refused map[string]error) error {
	if len(refused) == 0 {
		return nil
	}
	path := filepath.Join(s.dir, RejectedFile)
	var lines bytes.Buffer
	var set []Rejection
	at := time.Now().UTC()
	for i, ev := range b.evs {
		reason, ok := refused[ev.EventID]
		if !ok {
			continue
		}
		r := Rejection{At: at, Reason: reason.Error(), EventID: ev.EventID, Subject: ev.Subject(), Event: b.payloads[i]}
		line, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("set aside event %s: %w", ev.EventID, err)
		}
		lines.Write(append(line, '\n'))
		set = append(set, r)
	}
	if len(set) == 0 {
		return nil // the refused events lie beyond b, which the cursor passes
	}
	if err := appendSynced(path, lines.Bytes()); err != nil {
		return fmt.Errorf("set aside refused events: %w", err)
	}
	s.setAsideDone(set)
	for _, r := range set {
		s.logger.Error("the broker refused a spooled event for good; moved it to the rejected file and forwarding the rest",
			"event_id", r.EventID, "subject", r.Subject, "reason", r.Reason, "file", path)
	}
	return nil
}

// appendSynced appends data to the file at path, creating it, and fsyncs it.
// A line torn by a crash is ended first, so that it cannot swallow the next.
func appendSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	torn, err := endsTorn(f)
	if err == nil && torn {
		data = append([]byte{'\n'}, data...)
	}
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// endsTorn reports whether f is not empty and does not end with a newline.
func endsTorn(f *os.File) (bool, error) {
	info, err := f.Stat()
	if err != nil || info.Size() == 0 {
		return false, err
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, info.Size()-1); err != nil && err != io.EOF {
		return false, err
	}
	return last[0] != '\n', nil
}
