package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// Every program and subcommand, as an operator runs it: --help and -h print
// usage and exit 0 without starting anything (no broker is reachable, and
// ikd-dev's data directory stays empty); an unknown flag prints usage and
// exits 2.
func TestEveryProgramExplainsItselfAndRefusesUnknownFlags(t *testing.T) {
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+"/",
		"github.com/ikd-pipeline/ikd/deploy/ikd-dev", "github.com/ikd-pipeline/ikd/producers/ikd-counter",
		"github.com/ikd-pipeline/ikd/consumers/ikd-aggregator", "github.com/ikd-pipeline/ikd/consumers/ikd-alerter",
		"github.com/ikd-pipeline/ikd/consumers/ikd-papan")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dataDir := filepath.Join(dir, "var")
	nowhere := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	run := func(args ...string) (int, string, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(dir, args[0]), args[1:]...)
		cmd.Env = append(os.Environ(), "IKD_DATA_DIR="+dataDir, "IKD_NATS_URL=nats://"+nowhere,
			"IKD_CLICKHOUSE_DSN=http://"+nowhere, "IKD_NATS_LISTEN="+nowhere, "IKD_CLICKHOUSE_LISTEN="+nowhere,
			"IKD_METRICS_LISTEN=127.0.0.1:0")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			return exit.ExitCode(), stdout.String(), stderr.String()
		case err != nil:
			t.Fatalf("%v: %v", args, err)
		}
		return 0, stdout.String(), stderr.String()
	}
	commands := [][]string{
		{"ikd-dev"}, {"ikd-counter"}, {"ikd-counter", "publish"}, {"ikd-counter", "simulate"},
		{"ikd-aggregator"}, {"ikd-aggregator", "deadletters"}, {"ikd-aggregator", "replay"}, {"ikd-aggregator", "reconcile"},
		{"ikd-alerter"}, {"ikd-papan"},
	}
	for _, c := range commands {
		for _, help := range []string{"--help", "-h"} {
			args := append(append([]string{}, c...), help)
			code, stdout, stderr := run(args...)
			if code != 0 || !strings.HasPrefix(stdout, "usage: "+strings.Join(c, " ")) {
				t.Errorf("%v: exit %d, stdout:\n%s\nstderr:\n%s", args, code, stdout, stderr)
			}
		}
		args := append(append([]string{}, c...), "--no-such-flag")
		code, stdout, stderr := run(args...)
		if code != 2 || !strings.Contains(stderr, "no-such-flag") || !strings.Contains(stderr, "usage: ") || stdout != "" {
			t.Errorf("%v: exit %d, stdout:\n%s\nstderr:\n%s", args, code, stdout, stderr)
		}
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("ikd-dev --help touched its data directory: %v", err)
	}
}
