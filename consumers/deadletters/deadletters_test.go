package deadletters_test

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ikd-pipeline/ikd/consumers/deadletters"
	"github.com/ikd-pipeline/ikd/internal/contract"
	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

func TestRedactHidesEveryNIKLikeRun(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"nik":"3171010101900001"}`, `{"nik":"NIK-REDACTED"}`},
		{`{"nik":"31710101019000012"}`, `{"nik":"NIK-REDACTED"}`},
		{`{"nik":"\u0033\u00317101010190000\u0031"}`, `{"nik":"NIK-REDACTED"}`},
		{`nik 3171 0101 0190 0001 is invalid`, `nik NIK-REDACTED is invalid`},
		{`3171.0101.0190.0001`, `NIK-REDACTED`},
		{`{"occurred_at":"2026-12-01T08:33:41Z","office_id":"OFF-01"}`, `{"occurred_at":"2026-12-01T08:33:41Z","office_id":"OFF-01"}`},
		{`serial 123456789012345 has 15 digits`, `serial 123456789012345 has 15 digits`},
	} {
		if got := deadletters.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCheckReasonRefusesAnUnknownReasonAndListsTheKnownOnes(t *testing.T) {
	for _, r := range []string{"unknown_region", "write_failed", "future_time"} {
		if err := deadletters.CheckReason(r); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
	err := deadletters.CheckReason("no_such_reason")
	if err == nil || !strings.Contains(err.Error(), "no_such_reason") || !strings.Contains(err.Error(), "unknown_region") ||
		!strings.Contains(err.Error(), "write_failed") {
		t.Errorf("no_such_reason: %v", err)
	}
}

func TestListCountsByReasonWithTheOldestAndARedactedSample(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, js := testenv.JetStream(t, testenv.Broker(t).URL())
	store := func(reason, detail, payload string, seq int) {
		m := nats.NewMsg(contract.DeadLetterSubject(reason))
		m.Data = []byte(payload)
		m.Header.Set(contract.HeaderReason, reason)
		m.Header.Set(contract.HeaderDetail, detail)
		m.Header.Set(contract.HeaderOriginalSubject, "ikd.v1.activation.17.71")
		m.Header.Set(contract.HeaderOriginalSeq, strconv.Itoa(seq))
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	store("unknown_field", "nik: birth date 1990-02-31 in 3171013102900001", `{"nik":"3171013102900001","office_id":"OFF-01"}`, 7)
	store("future_time", "occurred_at: 2h ahead", `{"nik":"3171010101900001"}`, 8)
	store("unknown_field", "nik: serial 0000", `{"nik":"3171010101900000"}`, 9)

	reasons, err := deadletters.List(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(reasons) != 2 || reasons[0].Reason != "future_time" || reasons[0].Count != 1 || reasons[1].Reason != "unknown_field" || reasons[1].Count != 2 {
		t.Fatalf("reasons: %+v", reasons)
	}
	field := reasons[1]
	if len(field.Samples) != 1 || field.Samples[0].OriginalSeq != "7" || field.Oldest.After(field.Newest) || field.Oldest.IsZero() {
		t.Errorf("unknown_field: %+v", field)
	}
	var out bytes.Buffer
	if err := deadletters.Print(&out, reasons); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"unknown_field  2", "future_time    1", "total          3", "WIB", nik.Redacted, "replay --reason"} {
		if !strings.Contains(got, want) {
			t.Errorf("listing lacks %q:\n%s", want, got)
		}
	}
	for _, number := range []string{"3171013102900001", "3171010101900001", "3171010101900000"} {
		if strings.Contains(got, number) {
			t.Errorf("listing shows the NIK %s:\n%s", number, got)
		}
	}
	t.Logf("listing:\n%s", got)
}
