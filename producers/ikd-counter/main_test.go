package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/producers/intake"
)

const (
	validNIK     = "1771011205900001" // Kota Bengkulu, born 12 May 1990, man
	otherNIK     = "1871015212950002" // Kota Bandar Lampung, born 12 Dec 1995, woman
	shortNIK     = "177101120590001"
	noRegionNIK  = "9901011205900001"
	badBirthNIK  = "1771013205900001" // day 32
	occurredAt   = "2023-02-13T09:30:00+07:00"
	officeBkl    = "1771-OFF-01"
	typeUnknown  = "renewal"
	malformedRaw = `{"type":"activation","nik":`
)

func line(typ, number string) string {
	return fmt.Sprintf(`{"type":%q,"nik":%q,"office_id":%q,"occurred_at":%q,"channel":"counter"}`, typ, number, officeBkl, occurredAt)
}

// input is 3 valid lines and one line of each kind of fault, with a blank
// line among them.
var input = strings.Join([]string{
	line("activation", validNIK),    // 1
	line("enrolment", otherNIK),     // 2
	"",                              // 3
	line("activation", shortNIK),    // 4
	line("enrolment", validNIK),     // 5
	line("activation", noRegionNIK), // 6
	line("activation", badBirthNIK), // 7
	line(typeUnknown, validNIK),     // 8
	malformedRaw,                    // 9
}, "\n") + "\n"

var wantRejections = []string{
	"line 4: invalid_nik: nik: 15 characters, want 16 digits",
	"line 6: unknown_region: nik: unknown region 99.01.01: no province 99",
	"line 7: invalid_nik: nik: birth day out of range",
	"line 8: unknown_type: type:",
	"line 9: malformed_json:",
}

// startBroker runs an embedded broker, provisions the streams as the admin
// does, and points the command at it with the counter's credentials, in a
// development run (the public development key).
func startBroker(t *testing.T) jetstream.JetStream {
	t.Helper()
	e := testenv.Broker(t)
	testenv.SetBrokerEnv(t, e.URL(), broker.RoleCounter)
	t.Setenv("IKD_DEVELOPMENT", "1")
	_, js := testenv.JetStream(t, e.URL())
	return js
}

type result struct {
	code           int
	stdout, stderr string
}

func runCounter(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "counter.jsonl")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// streamIDs returns the Nats-Msg-Id of every event in the stream, in order.
func streamIDs(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	var ids []string
	for _, msg := range testenv.StreamMessages(t, js, broker.EventsStream) {
		ids = append(ids, msg.Header.Get(jetstream.MsgIDHeader))
	}
	return ids
}

// wantIDs builds the valid lines as the command does, with the default key.
func wantIDs(t *testing.T) []string {
	t.Helper()
	b := testenv.Builder(t)
	var ids []string
	for _, l := range []string{line("activation", validNIK), line("enrolment", otherNIK), line("enrolment", validNIK)} {
		ev, err := b.Build([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.EventID)
	}
	return ids
}

func TestPublishReportsBadLinesAndPublishesTheValidOnesOnce(t *testing.T) {
	js := startBroker(t)
	path := writeFile(t, input)
	runs := []struct {
		name   string
		stdout string
	}{
		{"first time", "published 3 events (0 duplicates), rejected 5 lines\n"},
		{"same file again", "published 0 events (3 duplicates), rejected 5 lines\n"},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			got := runCounter(t, "", "publish", path)
			if got.code != exitRejected {
				t.Errorf("exit status %d, want %d; stderr:\n%s", got.code, exitRejected, got.stderr)
			}
			if got.stdout != r.stdout {
				t.Errorf("stdout %q, want %q", got.stdout, r.stdout)
			}
			for _, want := range wantRejections {
				if !strings.Contains(got.stderr, want) {
					t.Errorf("stderr does not report %q:\n%s", want, got.stderr)
				}
			}
			if n := strings.Count(got.stderr, "line "); n != len(wantRejections) {
				t.Errorf("stderr reports %d lines, want %d:\n%s", n, len(wantRejections), got.stderr)
			}
			for _, number := range []string{validNIK, otherNIK, shortNIK, noRegionNIK, badBirthNIK} {
				if strings.Contains(got.stderr, number) {
					t.Errorf("stderr holds the NIK %s:\n%s", number, got.stderr)
				}
			}
			if ids := streamIDs(t, js); !slices.Equal(ids, wantIDs(t)) {
				t.Errorf("stream holds %v, want the valid lines' events %v", ids, wantIDs(t))
			}
		})
	}
}

func TestPublishReadsStdinAndSkipsOversizedLines(t *testing.T) {
	js := startBroker(t)
	in := line("activation", validNIK) + "\r\n" + strings.Repeat("x", intake.MaxLine+10) + "\n\n   \n" + line("enrolment", otherNIK)

	got := runCounter(t, in, "publish", "-")
	if got.code != exitRejected {
		t.Errorf("exit status %d, want %d; stderr:\n%s", got.code, exitRejected, got.stderr)
	}
	if want := "line 2: oversized: longer than 65536 bytes"; !strings.Contains(got.stderr, want) {
		t.Errorf("stderr does not report %q:\n%s", want, got.stderr)
	}
	if want := "published 2 events (0 duplicates), rejected 1 lines\n"; got.stdout != want {
		t.Errorf("stdout %q, want %q", got.stdout, want)
	}
	if n := len(streamIDs(t, js)); n != 2 {
		t.Errorf("stream holds %d events, want 2", n)
	}
}

func TestPublishOfCleanInputExitsZero(t *testing.T) {
	startBroker(t)
	got := runCounter(t, line("activation", validNIK)+"\n", "publish")
	if got.code != exitOK {
		t.Errorf("exit status %d, want 0; stderr:\n%s", got.code, got.stderr)
	}
}

// secretKey is a key the policy accepts (32 bytes from crypto/rand).
const secretKey = "5f0c9a1be37d4286c1e9f04a7b2d6538e0a4c7f19b3d5e7260184c9fa2b3d6e1"

func TestTheKeyPolicyRefusesAMissingPublicOrWeakKeyOutsideADevelopmentRun(t *testing.T) {
	tests := []struct {
		name, development, key string
		code                   int
		says                   string
	}{
		{"development run, no key", "1", "", exitOK, "public development key"},
		{"development run, own key", "1", secretKey, exitOK, ""},
		{"no key", "0", "", exitUsage, "IKD_PSEUDONYM_KEY: no key"},
		{"the development key", "0", nik.DevelopmentKey, exitUsage, "IKD_PSEUDONYM_KEY: the public development key"},
		{"a passphrase", "0", "a-secret-key-of-32-characters-00", exitUsage, "IKD_PSEUDONYM_KEY: 24 bytes, want at least 32"},
		{"a short key", "0", secretKey[:32], exitUsage, "IKD_PSEUDONYM_KEY: 16 bytes"},
		{"a weak key", "0", strings.Repeat("00", 32), exitUsage, "IKD_PSEUDONYM_KEY: weak key"},
		{"own key", "0", secretKey, exitOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			startBroker(t)
			t.Setenv("IKD_DEVELOPMENT", tt.development)
			t.Setenv("IKD_PSEUDONYM_KEY", tt.key)
			got := runCounter(t, "", "publish")
			if got.code != tt.code {
				t.Errorf("exit status %d, want %d; stderr:\n%s", got.code, tt.code, got.stderr)
			}
			if !strings.Contains(got.stderr, "IKD_PSEUDONYM_KEY=xxxxx") && tt.key != "" {
				t.Errorf("configuration not printed with the key masked:\n%s", got.stderr)
			}
			if strings.Contains(got.stderr, nik.DevelopmentKey) || tt.key != "" && strings.Contains(got.stderr, tt.key) {
				t.Errorf("key printed:\n%s", got.stderr)
			}
			if tt.says != "" && !strings.Contains(got.stderr, tt.says) {
				t.Errorf("stderr does not say %q:\n%s", tt.says, got.stderr)
			}
			if tt.says == "" && strings.Contains(got.stderr, "development key") {
				t.Errorf("warned about the development key with a key of its own:\n%s", got.stderr)
			}
		})
	}
}

func TestAPasswordOrTokenInTheNatsURLIsNeverPrinted(t *testing.T) {
	t.Setenv("IKD_DEVELOPMENT", "1")
	for _, u := range []string{"nats://ikd:Pa55-word@127.0.0.1:%d", "nats://T0ken-xyz@127.0.0.1:%d"} {
		// Nothing listens there: the start line and the connect error both
		// name the URL.
		t.Setenv("IKD_NATS_URL", fmt.Sprintf(u, testenv.FreePort(t)))
		got := runCounter(t, "", "publish")
		if got.code != exitUsage || !strings.Contains(got.stderr, "connect to NATS at nats://xxxxx@127.0.0.1:") {
			t.Errorf("exit %d; want the connect error with the host only:\n%s", got.code, got.stderr)
		}
		for _, secret := range []string{"Pa55-word", "T0ken-xyz"} {
			if strings.Contains(got.stderr+got.stdout, secret) {
				t.Errorf("printed %q:\n%s", secret, got.stderr)
			}
		}
	}
}

func TestUsageAndConnectionErrorsExitTwo(t *testing.T) {
	t.Setenv("IKD_NATS_URL", "nats://127.0.0.1:"+fmt.Sprint(testenv.FreePort(t)))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "usage:"},
		{"unknown command", []string{"fetch"}, `unknown command "fetch"`},
		{"two files", []string{"publish", "a", "b"}, "usage:"},
		{"missing file", []string{"publish", "/nonexistent/counter.jsonl"}, "no such file"},
		{"no broker", []string{"publish", "-"}, "IKD_NATS_URL"},
		{"simulate without rate", []string{"simulate"}, "positive --rate"},
		{"simulate with bad duration", []string{"simulate", "--rate", "5", "--duration", "soon"}, "invalid value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCounter(t, "", tt.args...)
			if got.code != exitUsage {
				t.Errorf("exit status %d, want %d", got.code, exitUsage)
			}
			if !strings.Contains(got.stderr, tt.want) {
				t.Errorf("stderr does not mention %q:\n%s", tt.want, got.stderr)
			}
		})
	}
}

func TestSimulatePrintsProgressAndPublishes(t *testing.T) {
	js := startBroker(t)
	// A rate well under what a broker syncing every write takes on a busy machine.
	got := runCounter(t, "", "simulate", "--rate", "200", "--duration", "1200ms", "--seed", "3")
	if got.code != exitOK {
		t.Fatalf("exit status %d, want 0; stderr:\n%s", got.code, got.stderr)
	}
	progress := regexp.MustCompile(`(?m)^simulate: ([0-9,]+) sent, ([0-9,]+) acked, [0-9,]+/s$`).FindAllStringSubmatch(got.stderr, -1)
	if len(progress) < 2 {
		t.Fatalf("want a progress line a second and a last one, got:\n%s", got.stderr)
	}
	last := progress[len(progress)-1]
	if last[1] != "240" || last[2] != "240" {
		t.Errorf("last progress %q, want 240 sent and acked", last[0])
	}
	if n := len(streamIDs(t, js)); n != 240 {
		t.Errorf("stream holds %d events, want 240", n)
	}
}

func TestThousandsGroupsDigitsByThree(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{
		{0, "0"}, {999, "999"}, {1000, "1,000"}, {12000, "12,000"}, {1234567, "1,234,567"},
	}
	for _, tt := range tests {
		if got := thousands(tt.n); got != tt.want {
			t.Errorf("thousands(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestHelpPrintsUsageAndExitsZeroWithoutABroker(t *testing.T) {
	t.Setenv("IKD_NATS_URL", "nats://127.0.0.1:"+fmt.Sprint(testenv.FreePort(t)))
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"publish", "--help"}, {"simulate", "-h"}, {"serve", "--help"}} {
		got := runCounter(t, "", args...)
		if got.code != exitOK || !strings.Contains(got.stdout, "usage:") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want usage and 0", args, got.code, got.stdout, got.stderr)
		}
	}
	got := runCounter(t, "", "publish", "--bogus")
	if got.code != exitUsage || !strings.Contains(got.stderr, "-bogus") || !strings.Contains(got.stderr, "usage:") {
		t.Errorf("unknown flag: exit %d, stderr %q; want usage and 2", got.code, got.stderr)
	}
}

func TestPublishThroughASpoolKeepsTheFileWhileTheLinkIsDownAndForwardsItLater(t *testing.T) {
	t.Setenv("IKD_NATS_URL", "nats://127.0.0.1:"+fmt.Sprint(testenv.FreePort(t)))
	t.Setenv("IKD_DEVELOPMENT", "1")
	dir := t.TempDir()
	got := runCounter(t, "", "publish", "--spool", dir, writeFile(t, input))
	if got.code != exitWaiting || !strings.Contains(got.stdout, "spooled 3 events, rejected 5 lines") || !strings.Contains(got.stdout, "3 events wait in the spool") {
		t.Fatalf("link down: exit status %d, stdout %q; want %d, 3 events spooled and waiting\n%s", got.code, got.stdout, exitWaiting, got.stderr)
	}

	js := startBroker(t)
	got = runCounter(t, "", "publish", "--spool", dir, "-")
	if got.code != exitOK || !strings.Contains(got.stdout, "is empty") {
		t.Errorf("link back: exit status %d, stdout %q; want 0 and the spool empty\n%s", got.code, got.stdout, got.stderr)
	}
	if ids := streamIDs(t, js); !slices.Equal(ids, wantIDs(t)) {
		t.Errorf("stream holds %v, want the valid lines' events %v in order", ids, wantIDs(t))
	}
}
