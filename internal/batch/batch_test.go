package batch

import (
	"context"
	"errors"
	"testing"
	"time"
)

// feed returns a next function serving items from ch.
func feed(ch <-chan int) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		select {
		case v, ok := <-ch:
			if !ok {
				return 0, errors.New("source closed")
			}
			return v, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func TestBatchClosesOnCount(t *testing.T) {
	ch := make(chan int, 10)
	for i := range 10 {
		ch <- i
	}
	got, err := Collect(context.Background(), 4, time.Hour, feed(ch))
	if err != nil || len(got) != 4 || got[0] != 0 || got[3] != 3 {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestBatchClosesOnTimeAfterFirstItem(t *testing.T) {
	ch := make(chan int, 10)
	ch <- 1
	ch <- 2
	start := time.Now()
	got, err := Collect(context.Background(), 100, 50*time.Millisecond, feed(ch))
	if err != nil || len(got) != 2 {
		t.Fatalf("got %v, %v", got, err)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("closed before maxWait")
	}
}

func TestIdleCollectorEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	got, err := Collect(ctx, 10, time.Millisecond, feed(make(chan int)))
	if !errors.Is(err, context.DeadlineExceeded) || len(got) != 0 {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestSourceFailureKeepsItemsAlreadyTaken(t *testing.T) {
	ch := make(chan int, 2)
	ch <- 7
	close(ch)
	got, err := Collect(context.Background(), 10, time.Hour, feed(ch))
	if err == nil || len(got) != 1 || got[0] != 7 {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestCancelledParentIsAnErrorNotATimeout(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 1
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	got, err := Collect(ctx, 10, time.Hour, feed(ch))
	if !errors.Is(err, context.Canceled) || len(got) != 1 {
		t.Fatalf("got %v, %v", got, err)
	}
}
