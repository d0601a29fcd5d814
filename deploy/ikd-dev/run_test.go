package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestTheAlertersLoggerInIkdDevKeepsOnlyWarningsAndWorse(t *testing.T) {
	var out bytes.Buffer
	logger := slog.New(atLeast{slog.NewTextHandler(&out, nil), slog.LevelWarn}).With("component", "alerter")
	logger.Info("alert", "region", "17.71")
	logger.WithGroup("g").Info("alert", "region", "18.71")
	logger.Warn("fetch from IKD_CHANGES failed; retrying")
	logger.Error("evaluation failed")
	got := out.String()
	if strings.Contains(got, "msg=alert") {
		t.Errorf("an alert transition was logged:\n%s", got)
	}
	if !strings.Contains(got, "level=WARN") || !strings.Contains(got, "level=ERROR") || !strings.Contains(got, "component=alerter") {
		t.Errorf("the alerter's trouble was not logged with its attributes:\n%s", got)
	}
}
