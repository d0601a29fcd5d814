package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// publish stores n messages on subject and waits for every acknowledgement.
func publish(t *testing.T, js jetstream.JetStream, subject string, n int) {
	t.Helper()
	for i := range n {
		if _, err := js.PublishAsync(subject, fmt.Appendf(nil, "message %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		t.Fatalf("%d publishes to %s not acknowledged within a minute", js.PublishAsyncPending(), subject)
	}
}

// limitedStream creates a stream on subjects.> that keeps its newest max
// messages.
func limitedStream(t *testing.T, js jetstream.JetStream, name, subjects string, max int64) {
	t.Helper()
	_, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: name, Subjects: []string{subjects + ".>"}, MaxMsgs: max})
	if err != nil {
		t.Fatal(err)
	}
}

// read reads the stream to its end and returns the sequences fn was handed.
func read(ctx context.Context, js jetstream.JetStream, name string, cfg jetstream.OrderedConsumerConfig, each func(n int)) ([]uint64, int, error) {
	var seqs []uint64
	n, err := broker.ReadStream(ctx, js, name, cfg, func(_ jetstream.Msg, seq uint64) error {
		seqs = append(seqs, seq)
		if each != nil {
			each(len(seqs))
		}
		return nil
	})
	return seqs, n, err
}

// wantRun fails unless seqs are from..to, each once, in order.
func wantRun(t *testing.T, seqs []uint64, from, to uint64) {
	t.Helper()
	if want := int(to - from + 1); len(seqs) != want {
		t.Fatalf("read %d messages, want %d (sequences %d to %d)", len(seqs), want, from, to)
	}
	for i, seq := range seqs {
		if seq != from+uint64(i) {
			t.Fatalf("message %d has sequence %d, want %d", i, seq, from+uint64(i))
		}
	}
}

func TestReadStreamReturnsEveryMessageAcrossABrokerRestart(t *testing.T) {
	dir, port := testenv.StoreDir(t), testenv.FreePort(t)
	first := testenv.BrokerAt(t, dir, port)
	_, js := testenv.JetStream(t, first.URL())
	const total = 3000
	publish(t, js, broker.EventsPrefix+".test", total)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	seqs, n, err := read(ctx, js, broker.EventsStream, jetstream.OrderedConsumerConfig{}, func(n int) {
		switch n {
		case 1:
			// Published after the read began: left for the next read.
			publish(t, js, broker.EventsPrefix+".test", 10)
		case 100:
			// The consumer has more messages on the server than in hand.
			first.Shutdown()
			testenv.BrokerAt(t, dir, port)
		}
	})
	if err != nil {
		t.Fatalf("read across a restart: %v", err)
	}
	if n != total {
		t.Errorf("ReadStream counted %d messages, want %d", n, total)
	}
	wantRun(t, seqs, 1, total)
}

func TestReadStreamStartsAtTheFirstMessageTheLimitsKept(t *testing.T) {
	b := testenv.Broker(t)
	_, js := testenv.JetStream(t, b.URL())
	limitedStream(t, js, "READ_LIMITS", "limits", 100)
	publish(t, js, "limits.a", 250)

	seqs, _, err := read(t.Context(), js, "READ_LIMITS", jetstream.OrderedConsumerConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantRun(t, seqs, 151, 250)
}

func TestReadStreamEndsWhenLimitsRemoveTheRestDuringTheRead(t *testing.T) {
	b := testenv.Broker(t)
	_, js := testenv.JetStream(t, b.URL())
	const max = 3000 // more than the consumer takes in hand at once
	limitedStream(t, js, "READ_LIMITS", "limits", max)
	publish(t, js, "limits.a", max)

	// Once the read has begun, newer messages push out every message it was
	// to read; it ends with what it got, without waiting for the rest.
	seqs, _, err := read(t.Context(), js, "READ_LIMITS", jetstream.OrderedConsumerConfig{}, func(n int) {
		if n == 1 {
			publish(t, js, "limits.a", max)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) == 0 || len(seqs) > max {
		t.Fatalf("read %d messages, want 1 to %d", len(seqs), max)
	}
	wantRun(t, seqs, 1, uint64(len(seqs)))
}

func TestReadStreamHandsOverOnlyTheFilteredSubjects(t *testing.T) {
	b := testenv.Broker(t)
	_, js := testenv.JetStream(t, b.URL())
	limitedStream(t, js, "READ_FILTER", "filter", -1)
	for range 20 {
		publish(t, js, "filter.a", 1)
		publish(t, js, "filter.b", 2)
		publish(t, js, "filter.c", 1)
	}

	for _, tt := range []struct {
		filters []string
		want    int
	}{
		{[]string{"filter.a"}, 20},
		{[]string{"filter.a", "filter.c"}, 40},
		{[]string{"filter.b"}, 40},
		{[]string{"filter.none"}, 0},
		{nil, 80},
	} {
		t.Run(strings.Join(tt.filters, ","), func(t *testing.T) {
			var subjects []string
			n, err := broker.ReadStream(t.Context(), js, "READ_FILTER", jetstream.OrderedConsumerConfig{FilterSubjects: tt.filters},
				func(msg jetstream.Msg, _ uint64) error {
					subjects = append(subjects, msg.Subject())
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.want || len(subjects) != tt.want {
				t.Fatalf("read %d messages (counted %d), want %d", len(subjects), n, tt.want)
			}
			for _, s := range subjects {
				if len(tt.filters) > 0 && !strings.Contains(strings.Join(tt.filters, " "), s) {
					t.Fatalf("read a message on %s, outside the filter %v", s, tt.filters)
				}
			}
		})
	}
}

func TestReadStreamOfAnEmptyStreamReturnsNothing(t *testing.T) {
	b := testenv.Broker(t)
	_, js := testenv.JetStream(t, b.URL())
	n, err := broker.ReadStream(t.Context(), js, broker.DeadLetterStream, jetstream.OrderedConsumerConfig{}, func(jetstream.Msg, uint64) error {
		t.Fatal("a message of an empty stream")
		return nil
	})
	if err != nil || n != 0 {
		t.Fatalf("ReadStream = %d, %v; want 0, nil", n, err)
	}
}

func TestReadStreamStopsAtTheFirstErrorOfFn(t *testing.T) {
	b := testenv.Broker(t)
	_, js := testenv.JetStream(t, b.URL())
	publish(t, js, broker.EventsPrefix+".test", 10)
	refused := errors.New("refused")
	n, err := broker.ReadStream(t.Context(), js, broker.EventsStream, jetstream.OrderedConsumerConfig{}, func(_ jetstream.Msg, seq uint64) error {
		if seq == 4 {
			return refused
		}
		return nil
	})
	if !errors.Is(err, refused) || n != 3 {
		t.Fatalf("ReadStream = %d, %v; want 3, %v", n, err, refused)
	}
}

func TestReadStreamCancelledEndsWithAnErrorNamingStreamAndSequence(t *testing.T) {
	b := testenv.Broker(t)
	_, js := testenv.JetStream(t, b.URL())
	publish(t, js, broker.EventsPrefix+".test", 50)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, n, err := read(ctx, js, broker.EventsStream, jetstream.OrderedConsumerConfig{}, func(n int) {
		if n == 10 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadStream after cancel: %v, want context.Canceled", err)
	}
	for _, want := range []string{broker.EventsStream, "sequence 11 of 50"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n != 10 {
		t.Errorf("ReadStream counted %d messages, want 10", n)
	}
}

func TestReadStreamWaitsForAStoppedBrokerUntilTheContextEnds(t *testing.T) {
	b := testenv.Broker(t)
	_, js := testenv.JetStream(t, b.URL())
	publish(t, js, broker.EventsPrefix+".test", 3000)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// The broker goes away for good; the read neither ends early nor
	// forever, but with the context.
	done := make(chan error, 1)
	go func() {
		_, _, err := read(ctx, js, broker.EventsStream, jetstream.OrderedConsumerConfig{}, func(n int) {
			if n == 100 {
				b.Shutdown()
			}
		})
		done <- err
	}()
	testenv.Eventually(t, time.Minute, testenv.Holds("the broker stopped", func() bool { return !js.Conn().IsConnected() }))
	select {
	case err := <-done:
		t.Fatalf("the read ended while its broker was away: %v", err)
	default:
	}
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), broker.EventsStream) {
		t.Fatalf("ReadStream after cancel: %v, want context.Canceled naming %s", err, broker.EventsStream)
	}
}

func TestReadStreamRefusesAStartOtherThanTheFirstMessage(t *testing.T) {
	b := testenv.Broker(t)
	_, js := testenv.JetStream(t, b.URL())
	_, err := broker.ReadStream(t.Context(), js, broker.EventsStream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverLastPolicy},
		func(jetstream.Msg, uint64) error { return nil })
	if err == nil || !strings.Contains(err.Error(), broker.EventsStream) {
		t.Fatalf("ReadStream from the last message: %v, want an error naming the stream", err)
	}
}
