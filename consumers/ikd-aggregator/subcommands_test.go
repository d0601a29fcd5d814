package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/contract"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// The operator's commands against a real broker and warehouse: what their
// exit status and output say.
func TestOperatorCommandsListRefuseAndReconcileWithTheirExitStatus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := testenv.Broker(t)
	_, js := testenv.JetStream(t, b.URL())
	conn, _ := testenv.MigratedWarehouse(t)
	// The operator commands run with the broker's admin role.
	testenv.SetBrokerEnv(t, b.URL(), broker.RoleAdmin)
	t.Setenv("IKD_CLICKHOUSE_DSN", testenv.WarehouseDSN(t))
	cmd := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code, done := subcommand(ctx, testenv.Quiet, args, &stdout, &stderr)
		if !done {
			t.Fatalf("%v: not taken as a command", args)
		}
		return code, stdout.String(), stderr.String()
	}
	dl := nats.NewMsg(contract.DeadLetterSubject("unknown_field"))
	dl.Data = []byte(`{"nik":"3171010101900000"}`)
	dl.Header.Set(contract.HeaderReason, "unknown_field")
	dl.Header.Set(contract.HeaderOriginalSubject, "ikd.v1.activation.17.71")
	dl.Header.Set(contract.HeaderOriginalSeq, "1")
	if _, err := js.PublishMsg(ctx, dl); err != nil {
		t.Fatal(err)
	}

	code, out, _ := cmd("deadletters")
	if code != exitOK || !strings.Contains(out, "unknown_field  1") || strings.Contains(out, "3171010101900000") {
		t.Errorf("deadletters: exit %d\n%s", code, out)
	}
	code, out, errOut := cmd("replay", "--reason", "no_such_reason")
	if code != exitError || !strings.Contains(errOut, `unknown reason "no_such_reason"`) || !strings.Contains(errOut, "unknown_field") || out != "" {
		t.Errorf("replay of an unknown reason: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	stream, err := js.Stream(ctx, broker.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := stream.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Errorf("dead letters after a refused replay: %v %v", info, err)
	}

	// The dead letter names sequence 1, which the stream does not hold:
	// nothing is expected, so nothing differs.
	code, out, errOut = cmd("reconcile")
	if code != exitOK || !strings.Contains(out, "clean") {
		t.Errorf("reconcile of empty sides: exit %d\n%s%s", code, out, errOut)
	}
	ev := events.Event{V: 1, EventID: "forged", Type: events.TypeActivation, Resident: strings.Repeat("f", 32), ProvinceCode: "17",
		CityCode: "17.71", DistrictCode: "17.71.01", OfficeID: "X", Channel: events.ChannelCounter, OccurredAt: time.Now().Add(-time.Hour).UTC()}
	if err := warehouse.NewEventWriter(conn).Write(ctx, []warehouse.Record{{Event: ev}}); err != nil {
		t.Fatal(err)
	}
	code, out, _ = cmd("reconcile")
	if code != exitDifference || !strings.Contains(out, "forged") {
		t.Errorf("reconcile with a row the broker never had: exit %d\n%s", code, out)
	}
}
