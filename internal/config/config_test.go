package config

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type sample struct {
	URL    string `envconfig:"NATS_URL" default:"nats://127.0.0.1:4222"`
	DSN    string `envconfig:"CLICKHOUSE_DSN" default:"clickhouse://ikd:hunter2@db:9000/ikd" secret:"dsn"`
	Key    string `envconfig:"PSEUDONYM_KEY" default:"top-secret" secret:"true"`
	Nested struct {
		Size int           `envconfig:"SIZE" default:"5"`
		Wait time.Duration `envconfig:"WAIT" default:"1s"`
	} `envconfig:"AGG"`
}

func TestLogMasksSecretsAndNamesEveryVariable(t *testing.T) {
	var cfg sample
	if err := Load(&cfg); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	Log(slog.New(slog.NewTextHandler(&out, nil)), "test", &cfg)
	line := out.String()
	for _, want := range []string{"IKD_NATS_URL=nats://127.0.0.1:4222", "IKD_CLICKHOUSE_DSN=clickhouse://xxxxx@db:9000/xxxxx", "IKD_PSEUDONYM_KEY=xxxxx", "IKD_AGG_SIZE=5", "IKD_AGG_WAIT=1s"} {
		if !strings.Contains(line, want) {
			t.Errorf("missing %q in %s", want, line)
		}
	}
	if strings.Contains(line, "hunter2") || strings.Contains(line, "top-secret") {
		t.Errorf("secret printed: %s", line)
	}
}

func TestBadValueNamesTheVariable(t *testing.T) {
	t.Setenv("IKD_AGG_SIZE", "many")
	var cfg sample
	err := Load(&cfg)
	if err == nil || !strings.Contains(err.Error(), "IKD_AGG_SIZE") {
		t.Fatalf("got %v", err)
	}
}

func TestLogHidesCredentialsInAnyURLWhateverItsTag(t *testing.T) {
	t.Setenv("IKD_NATS_URL", "nats://ikd:natspass99@broker:4222")
	var cfg sample
	if err := Load(&cfg); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	Log(slog.New(slog.NewTextHandler(&out, nil)), "test", &cfg)
	if line := out.String(); strings.Contains(line, "natspass99") || !strings.Contains(line, "IKD_NATS_URL=nats://xxxxx@broker:4222") {
		t.Errorf("NATS URL not cut down to its host: %s", line)
	}
}
