package aggregator

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

var (
	transient = &WriteError{Class: ClassTransient, Err: errors.New("connection refused")}
	setup     = &WriteError{Class: ClassSetup, Err: errors.New("table ikd.events does not exist")}
	refused   = &WriteError{Class: ClassRefused, Err: errors.New("constraint no_poison violated")}
)

func TestJudgeBatchAcknowledgesOnlyWrittenBatchesAndIsolatesRefusals(t *testing.T) {
	cases := []struct {
		name     string
		err      error
		stopping bool
		size     int
		want     verdict
	}{
		{"written", nil, false, 500, acknowledge},
		{"written while stopping", nil, true, 500, acknowledge},
		{"warehouse down, stopping", transient, true, 500, sendBack},
		{"table missing, stopping", setup, true, 500, sendBack},
		{"refused while stopping", refused, true, 500, sendBack},
		{"refused batch", refused, false, 500, halve},
		{"refused pair", refused, false, 2, halve},
		{"refused event", refused, false, 1, refuseOne},
		{"unclassified error is the rows'", errors.New("odd"), false, 3, halve},
		{"wrapped refusal", fmt.Errorf("insert: %w", refused), false, 1, refuseOne},
		{"retries ended without shutdown", transient, false, 500, sendBack},
	}
	for _, c := range cases {
		if got := judgeBatch(c.err, c.stopping, c.size); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestJudgeRefusalDoublesTheDelayAndDeadLettersAtMaxDeliver(t *testing.T) {
	cases := []struct {
		n, maxDeliver int
		first         time.Duration
		want          refusal
	}{
		{1, 10, time.Second, refusal{delay: time.Second}},
		{2, 10, time.Second, refusal{delay: 2 * time.Second}},
		{4, 10, time.Second, refusal{delay: 8 * time.Second}},
		{9, 10, time.Second, refusal{delay: 256 * time.Second}},
		{10, 10, time.Second, refusal{deadLetter: true}},
		{11, 10, time.Second, refusal{deadLetter: true}},
		{1, 1, time.Second, refusal{deadLetter: true}},
		{10, 100, time.Second, refusal{delay: maxRefusedDelay}}, // 512s, capped
		{80, 100, time.Second, refusal{delay: maxRefusedDelay}}, // no overflow of the shift
		{3, 10, 10 * time.Millisecond, refusal{delay: 40 * time.Millisecond}},
	}
	for _, c := range cases {
		if got := judgeRefusal(c.n, c.maxDeliver, c.first); got != c.want {
			t.Errorf("refusal %d of %d (first delay %s): %+v, want %+v", c.n, c.maxDeliver, c.first, got, c.want)
		}
	}
}

func TestRetryableHoldsForTheWarehousesTroubleNotForTheRows(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{transient, true},
		{setup, true},
		{fmt.Errorf("attempt 3: %w", setup), true},
		{refused, false},
		{errors.New("unclassified"), false},
	}
	for _, c := range cases {
		if got := retryable(c.err); got != c.want {
			t.Errorf("retryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
