package cmdline

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"log/slog"
	"strings"
	"testing"
)

func TestParseAnswersHelpUnknownFlagsAndStrayArguments(t *testing.T) {
	for _, tc := range []struct {
		name           string
		args           []string
		code           int
		done           bool
		stdout, stderr string
	}{
		{"no arguments run the command", nil, 0, false, "", ""},
		{"a known flag runs the command", []string{"--reason", "invalid_nik"}, 0, false, "", ""},
		{"-h prints usage to stdout", []string{"-h"}, 0, true, "usage: prog", ""},
		{"--help prints usage to stdout", []string{"--help"}, 0, true, "-reason", ""},
		{"help after a flag still helps", []string{"--reason", "x", "--help"}, 0, true, "usage: prog", ""},
		{"an unknown flag is a usage error", []string{"--bogus"}, 2, true, "", "flag provided but not defined: -bogus"},
		{"a stray argument is a usage error", []string{"extra"}, 2, true, "", `unexpected argument "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("prog", flag.ContinueOnError)
			fs.String("reason", "", "only this reason")
			var stdout, stderr bytes.Buffer
			code, done := Command{Usage: "usage: prog [--reason R]\n", Flags: fs}.Parse(tc.args, &stdout, &stderr)
			if code != tc.code || done != tc.done {
				t.Errorf("code %d done %v; want %d %v", code, done, tc.code, tc.done)
			}
			if tc.stdout != "" && !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, stdout.String())
			}
			if tc.stderr != "" && (!strings.Contains(stderr.String(), tc.stderr) || !strings.Contains(stderr.String(), "usage: prog")) {
				t.Errorf("stderr lacks %q and the usage:\n%s", tc.stderr, stderr.String())
			}
			if tc.stdout == "" && stdout.Len() > 0 {
				t.Errorf("unexpected stdout:\n%s", stdout.String())
			}
		})
	}
}

func TestACommandWithoutFlagsStillAnswersHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code, done := Command{Usage: "usage: ikd-alerter\n"}.Parse([]string{"--help"}, &stdout, &stderr)
	if code != 0 || !done || stdout.String() != "usage: ikd-alerter\n" {
		t.Errorf("code %d done %v stdout %q", code, done, stdout.String())
	}
}

func TestStoppedFailsOnlyOnAnErrorWhileNoSignalCameIn(t *testing.T) {
	live := context.Background()
	signalled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		code int
		log  string
	}{
		{"a clean stop", signalled, nil, ExitOK, ""},
		{"no error while live", live, nil, ExitOK, ""},
		{"an error while live", live, errors.New("warehouse down"), ExitFailed, `level=ERROR msg="ikd-x stopped" err="warehouse down"`},
		{"an error after the signal", signalled, context.Canceled, ExitOK, `level=INFO msg="ikd-x stopped before it was fully started" interrupted="context canceled"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}))
			if code := Stopped(tc.ctx, logger, "ikd-x", tc.err); code != tc.code {
				t.Errorf("exit status %d, want %d", code, tc.code)
			}
			if got := strings.TrimSpace(logs.String()); got != tc.log {
				t.Errorf("logged %q, want %q", got, tc.log)
			}
		})
	}
}
