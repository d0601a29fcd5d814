package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
)

const benchStream = "IKD_BENCH_CEILING"

// brokerCeiling is the in-process equivalent of
//
//	nats bench js pub async --dedup --storage=file --size=300B
//	nats bench js fetch (durable pull consumer, explicit acks, Fetch batches)
//
// on a dedicated temporary stream (file storage, 2 min duplicate window, as
// nats bench uses), each on its own connection. It returns msgs/s for both.
func brokerCeiling(ctx context.Context, url string, auth broker.Auth, n, size, window, fetchBatch int) (pubRate, fetchRate float64, err error) {
	nc, err := broker.Connect(url, "bench-pub", auth, nil)
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	var asyncErrs int
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(window),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { asyncErrs++ }))
	if err != nil {
		return 0, 0, err
	}
	_ = js.DeleteStream(ctx, benchStream)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: benchStream, Subjects: []string{"ikdbench.>"}, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Minute, Retention: jetstream.LimitsPolicy,
	}); err != nil {
		return 0, 0, fmt.Errorf("create bench stream: %w", err)
	}
	defer js.DeleteStream(context.Background(), benchStream)

	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		msg := &nats.Msg{Subject: "ikdbench.pub", Data: payload, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, "bench-"+strconv.Itoa(i))
		// With every write synced, acknowledgements come slower than
		// publishes; wait for room in the window as the Publisher does.
		if _, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute)); err != nil {
			return 0, 0, fmt.Errorf("bench publish %d: %w", i, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return 0, 0, fmt.Errorf("bench publish: acks missing after a minute")
	}
	pubRate = float64(n) / time.Since(start).Seconds()
	if asyncErrs > 0 {
		return 0, 0, fmt.Errorf("bench publish: %d async errors", asyncErrs)
	}

	fc, err := broker.Connect(url, "bench-fetch", auth, nil)
	if err != nil {
		return 0, 0, err
	}
	defer fc.Close()
	fjs, err := jetstream.New(fc)
	if err != nil {
		return 0, 0, err
	}
	cons, err := fjs.CreateOrUpdateConsumer(ctx, benchStream, jetstream.ConsumerConfig{
		Durable: "bench-fetch", AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return 0, 0, err
	}
	got := 0
	start = time.Now()
	for got < n {
		b, err := cons.Fetch(fetchBatch, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return 0, 0, fmt.Errorf("bench fetch: %w", err)
		}
		k := 0
		for m := range b.Messages() {
			_ = m.Ack()
			k++
		}
		if k == 0 {
			return 0, 0, fmt.Errorf("bench fetch: stalled at %d of %d (%v)", got, n, b.Error())
		}
		got += k
	}
	fetchRate = float64(got) / time.Since(start).Seconds()
	return pubRate, fetchRate, nil
}
