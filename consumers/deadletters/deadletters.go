// Package deadletters tells an operator what sits in the dead-letter stream:
// how many dead letters of each reason, the oldest, and a sample with any
// NIK-like digit run redacted, so that it can be shown on a terminal.
package deadletters

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/contract"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/nik"
)

// Reasons are the reasons the aggregator dead-letters with: the reasons of
// events.Validator (invalid_nik is not one: events carry a pseudonym, the
// NIK is judged by the producer), "invalid" for a failure without a reason,
// and "write_failed" for an event the warehouse refused MaxDeliver times.
var Reasons = []string{
	string(events.ReasonMalformedJSON), string(events.ReasonUnknownVersion), string(events.ReasonUnknownType),
	string(events.ReasonMissingField), string(events.ReasonInvalidField), string(events.ReasonUnknownRegion),
	string(events.ReasonFutureTime), string(events.ReasonOversized), string(events.ReasonUnknownField),
	"invalid", "write_failed",
}

// CheckReason returns an error listing the known reasons when reason is not one.
func CheckReason(reason string) error {
	if slices.Contains(Reasons, reason) {
		return nil
	}
	return fmt.Errorf("unknown reason %q; known reasons: %s", reason, strings.Join(Reasons, ", "))
}

// Sample is one dead letter, fit to show: no payload byte that could be a NIK.
type Sample struct {
	Seq             uint64 // in IKD_DEADLETTER
	OriginalSeq     string // in IKD_EVENTS
	OriginalSubject string
	At              time.Time // when it was dead-lettered
	Detail          string    // redacted
	Payload         string    // redacted, cut to maxPayload bytes
}

// Reason sums up the dead letters of one reason.
type Reason struct {
	Reason  string
	Count   int
	Oldest  time.Time
	Newest  time.Time
	Samples []Sample // the oldest ones, up to the limit asked
}

// maxPayload bounds a sample's payload on screen.
const maxPayload = 160

// List reads IKD_DEADLETTER up to its last message and sums it up by reason,
// keeping up to samples dead letters of each; reasons come in name order.
func List(ctx context.Context, js jetstream.JetStream, samples int) ([]Reason, error) {
	by := map[string]*Reason{}
	letters := jetstream.OrderedConsumerConfig{FilterSubjects: []string{broker.DeadLetterPrefix + ".>"}}
	_, err := broker.ReadStream(ctx, js, broker.DeadLetterStream, letters, func(msg jetstream.Msg, seq uint64) error {
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("dead letter %d: %w", seq, err)
		}
		h := msg.Headers()
		reason := h.Get(contract.HeaderReason)
		if reason == "" {
			reason = strings.TrimPrefix(msg.Subject(), broker.DeadLetterPrefix+".")
		}
		r := by[reason]
		if r == nil {
			r = &Reason{Reason: reason, Oldest: meta.Timestamp}
			by[reason] = r
		}
		r.Count++
		r.Oldest, r.Newest = minTime(r.Oldest, meta.Timestamp), maxTime(r.Newest, meta.Timestamp)
		if len(r.Samples) < samples {
			r.Samples = append(r.Samples, Sample{
				Seq: seq, OriginalSeq: h.Get(contract.HeaderOriginalSeq), OriginalSubject: h.Get(contract.HeaderOriginalSubject),
				At: meta.Timestamp, Detail: Redact(h.Get(contract.HeaderDetail)), Payload: cut(Redact(string(msg.Data())), maxPayload),
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	out := make([]Reason, 0, len(by))
	for _, r := range by {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Reason) int { return strings.Compare(a.Reason, b.Reason) })
	return out, nil
}

// Redact replaces every NIK-like run in s (nik.Runs: 16 digits, separated,
// escaped or full-width) with nik.Redacted.
func Redact(s string) string { return nik.RedactString(s) }

// cut shortens s to n bytes, after redaction so that no part of a NIK is
// left by the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Print writes the summary table, then the samples of each reason, in WIB.
func Print(w io.Writer, reasons []Reason) error {
	if len(reasons) == 0 {
		_, err := fmt.Fprintln(w, "no dead letters")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "reason\tcount\toldest (WIB)\tnewest (WIB)")
	total := 0
	for _, r := range reasons {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", r.Reason, r.Count, wib(r.Oldest), wib(r.Newest))
		total += r.Count
	}
	fmt.Fprintf(tw, "total\t%d\t\t\n", total)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range reasons {
		for _, s := range r.Samples {
			fmt.Fprintf(w, "\n%s #%d (event seq %s, %s, %s)\n  detail:  %s\n  payload: %s\n",
				r.Reason, s.Seq, s.OriginalSeq, s.OriginalSubject, wib(s.At), s.Detail, s.Payload)
		}
	}
	_, err := fmt.Fprintf(w, "\nreplay one reason, once its cause is fixed: ikd-aggregator replay --reason REASON\n")
	return err
}

func wib(t time.Time) string { return t.In(events.WIB).Format("2006-01-02 15:04:05 MST") }

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
