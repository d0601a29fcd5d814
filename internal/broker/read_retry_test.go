package broker

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestReadRepeatsOnlyRequestsThatMaySucceedLater(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nats.ErrTimeout, true},
		{context.DeadlineExceeded, true}, // one attempt's bound, not the read's
		{nats.ErrNoResponders, true},
		{jetstream.ErrNoStreamResponse, true},
		{&jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{jetstream.ErrJetStreamNotEnabled, true}, // a node still starting
		{jetstream.ErrConsumerNotFound, true},
		{fmt.Errorf("look up: %w", nats.ErrTimeout), true},
		{jetstream.ErrStreamNotFound, false},
		{fmt.Errorf("stream info: %w", jetstream.ErrStreamNotFound), false},
		{nats.ErrConnectionClosed, false},
		{nats.ErrPermissionViolation, false},
		{nats.ErrAuthorization, false},
		{context.Canceled, false},
		{jetstream.ErrInvalidOption, false},
	} {
		if got := retryable(tt.err); got != tt.want {
			t.Errorf("retryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestSetUpRequestsAreRepeatedOnlyWhileTheyMaySucceed(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true}, // a node died under the request
		{nats.ErrNoResponders, true},
		{&jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{&jetstream.APIError{Code: 408, Description: "request timeout"}, true},
		{fmt.Errorf("create consumer: %w", nats.ErrTimeout), true},
		{&jetstream.APIError{Code: 400, ErrorCode: 10013, Description: "consumer name in subject does not match durable name in request"}, false},
		{fmt.Errorf("lease bucket: %w", jetstream.ErrBucketNotFound), false},
		{jetstream.ErrStreamNotFound, false},
		{nats.ErrPermissionViolation, false},
		{context.Canceled, false},
	} {
		if got := requestRetryable(tt.err); got != tt.want {
			t.Errorf("requestRetryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
