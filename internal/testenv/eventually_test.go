package testenv_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/testenv"
)

func TestAwaitReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	err := testenv.Await(time.Minute, func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls, want nil after 3", err, calls)
	}
}

func TestAwaitReportsTheLastStateWhenTheConditionNeverHolds(t *testing.T) {
	calls := 0
	err := testenv.Await(0, func() error {
		calls++
		return errors.New("3 of 5 settled")
	})
	if err == nil || !strings.Contains(err.Error(), "3 of 5 settled") || calls != 1 {
		t.Fatalf("err %v after %d calls, want the condition's last word after 1", err, calls)
	}
}
