package aggregator_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/replay"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/contract"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

func TestAMessageCarryingANIKIsDeadLetteredRedactedAndErasedFromTheEventStream(t *testing.T) {
	store := t.TempDir()
	p := prepareAt(t, store)
	p.run(t)
	ctx := context.Background()
	number := p.residentOf(t, "17.71", 7)
	good, err := p.builder.Build([]byte(line("activation", p.residentOf(t, "17.71", 8), "1771-OFF-01", time.Now().Add(-time.Minute).Format(time.RFC3339))))
	if err != nil {
		t.Fatal(err)
	}
	spaced := number[0:4] + " " + number[4:8] + " " + number[8:12] + " " + number[12:16]
	goodJSON := string(mustMarshal(t, good))
	poison := []struct{ subject, data string }{
		{"ikd.v1.activation.17.71", line("activation", number, "1771-OFF-01", time.Now().Format(time.RFC3339))}, // a raw counter line
		{"ikd.v1.activation.17.71", strings.Replace(goodJSON, `"1771-OFF-01"`, `"BKL `+spaced+`"`, 1)},
		{"ikd.v1.activation.17.71", strings.Replace(goodJSON, `"event_id":"`+good.EventID, `"event_id":"x`+number, 1)},
		{"ikd.v1.activation." + number, goodJSON},
	}
	var seqs []uint64
	for _, m := range poison {
		ack, err := p.js.Publish(ctx, m.subject, []byte(m.data))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	p.publishEvent(t, good)
	p.settle(t)

	letters, err := p.js.Stream(ctx, contract.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	for i, seq := range seqs {
		dl, err := letters.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatalf("dead letter %d: %v", i+1, err)
		}
		if _, n := events.Redact(dl.Data); n > 0 || strings.Contains(string(dl.Data), number) {
			t.Errorf("dead letter %d keeps a NIK: %s", i+1, dl.Data)
		}
		for name, values := range dl.Header {
			for _, v := range values {
				if nik.HasRun(v) {
					t.Errorf("dead letter %d header %s keeps a NIK: %s", i+1, name, v)
				}
			}
		}
		if dl.Header.Get(contract.HeaderRedacted) == "" || dl.Header.Get(contract.HeaderReason) == "" {
			t.Errorf("dead letter %d does not say it was redacted, or why it is there: %v", i+1, dl.Header)
		}
		if _, err := p.eventsStream(t).GetMsg(ctx, seq); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Errorf("the original at event stream sequence %d is still there (err %v)", seq, err)
		}
	}

	// The broker's files keep the NIK in no form: the erase overwrote it.
	for _, form := range []string{number, spaced} {
		if files := filesHolding(t, store, form); len(files) != 0 {
			t.Errorf("the broker's store holds %q in %v", form, files)
		}
	}

	// Replaying the dead letters sends back what they hold, never a NIK.
	replayed, err := replay.Replay(ctx, p.js, replay.Filter{}, testenv.Quiet)
	if err != nil || replayed != len(poison) {
		t.Fatalf("replayed %d of %d dead letters: %v", replayed, len(poison), err)
	}
	p.settle(t)
	_, err = broker.ReadStream(ctx, p.js, contract.EventsStream, jetstream.OrderedConsumerConfig{}, func(msg jetstream.Msg, seq uint64) error {
		if _, n := events.Redact(msg.Data()); n > 0 || nik.HasRun(msg.Subject()) {
			t.Errorf("event stream sequence %d holds a NIK after the replay: %s %s", seq, msg.Subject(), msg.Data())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	var keyID string
	if err := p.conn.QueryRow(ctx, "SELECT key_id FROM ikd.events WHERE event_id = ?", good.EventID).Scan(&keyID); err != nil {
		t.Fatal(err)
	}
	if want := nik.KeyID([]byte(nik.DevelopmentKey)); keyID != want {
		t.Errorf("warehouse key_id %q, want %q", keyID, want)
	}
}

func (p *pipeline) eventsStream(t *testing.T) jetstream.Stream {
	t.Helper()
	s, err := p.js.Stream(context.Background(), contract.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// filesHolding lists the files under dir that contain s.
func filesHolding(t *testing.T, dir, s string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(s)) {
			found = append(found, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
