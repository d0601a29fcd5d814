package alerter

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// streamPublisher is the Publisher on IKD_ALERTS.
type streamPublisher struct {
	js     jetstream.JetStream
	failed *atomic.Uint64 // publications the broker did not take
}

// Publish sends one transition to IKD_ALERTS under its MsgID and tells
// whether the broker took it as new (false: another alerter, or an earlier
// attempt, published it within the duplicate window).
func (p streamPublisher) Publish(ctx context.Context, al Alert) (bool, error) {
	data, err := json.Marshal(al)
	if err != nil {
		return false, fmt.Errorf("encode alert %s: %w", al.MsgID(), err)
	}
	msg := nats.NewMsg(al.Subject())
	msg.Data = data
	msg.Header.Set(nats.MsgIdHdr, al.MsgID())
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ack, err := p.js.PublishMsg(pctx, msg)
	if err != nil {
		p.failed.Add(1)
		return false, fmt.Errorf("publish alert %s to %s: %w", al.MsgID(), msg.Subject, err)
	}
	return !ack.Duplicate, nil
}
