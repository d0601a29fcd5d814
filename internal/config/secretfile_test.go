package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestASecretComesFromTheFileItsFileVariableNames(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	key, dsn := write("key", "s3cret-key\n"), write("dsn", "http://ikd:pw@db:8123/ikd\r\n")
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantKey string
		wantDSN string
		wantErr string
	}{
		{name: "no file: the variable or the default", env: map[string]string{"IKD_PSEUDONYM_KEY": "plain"}, wantKey: "plain", wantDSN: "clickhouse://ikd:hunter2@db:9000/ikd"},
		{name: "files, trailing newline dropped", env: map[string]string{"IKD_PSEUDONYM_KEY_FILE": key, "IKD_CLICKHOUSE_DSN_FILE": dsn}, wantKey: "s3cret-key", wantDSN: "http://ikd:pw@db:8123/ikd"},
		{name: "both set", env: map[string]string{"IKD_PSEUDONYM_KEY": "plain", "IKD_PSEUDONYM_KEY_FILE": key}, wantErr: "IKD_PSEUDONYM_KEY and IKD_PSEUDONYM_KEY_FILE are alternatives"},
		{name: "missing file", env: map[string]string{"IKD_PSEUDONYM_KEY_FILE": filepath.Join(dir, "absent")}, wantErr: "IKD_PSEUDONYM_KEY_FILE: open"},
		{name: "not a secret: no file variable", env: map[string]string{"IKD_NATS_URL_FILE": key}, wantKey: "top-secret", wantDSN: "clickhouse://ikd:hunter2@db:9000/ikd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var cfg sample
			err := Load(&cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Key != tc.wantKey || cfg.DSN != tc.wantDSN || cfg.URL != "nats://127.0.0.1:4222" {
				t.Errorf("key %q dsn %q url %q, want %q %q", cfg.Key, cfg.DSN, cfg.URL, tc.wantKey, tc.wantDSN)
			}
		})
	}
}
