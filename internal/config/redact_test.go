package config

import (
	"strings"
	"testing"
)

func TestRedactURLShowsOnlySchemesAndHosts(t *testing.T) {
	tests := []struct{ name, in, want, secret string }{
		{"plain NATS URL", "nats://127.0.0.1:4222", "nats://127.0.0.1:4222", ""},
		{"NATS user and password", "nats://ikd:hunter2@broker:4222", "nats://xxxxx@broker:4222", "hunter2"},
		{"NATS token", "nats://s3cr3tT0ken@broker:4222", "nats://xxxxx@broker:4222", "s3cr3tT0ken"},
		{"a password with @ and :", "nats://ikd:p@ss:w@rd@broker:4222", "nats://xxxxx@broker:4222", "ss:w"},
		{"several NATS URLs", "nats://a:pw1@n1:4222, nats://a:pw2@n2:4222", "nats://xxxxx@n1:4222, nats://xxxxx@n2:4222", "pw"},
		{"TLS URL", "tls://u:secretpw@broker.example:4222", "tls://xxxxx@broker.example:4222", "secretpw"},
		{"ClickHouse DSN", "clickhouse://ikd:hunter2@db:9000/ikd?dial_timeout=1s", "clickhouse://xxxxx@db:9000/xxxxx", "hunter2"},
		{"HTTP DSN without credentials", "http://127.0.0.1:8123", "http://127.0.0.1:8123", ""},
		{"HTTP DSN with a slash", "http://127.0.0.1:8123/", "http://127.0.0.1:8123/", ""},
		{"password in the query", "http://db:8123/?user=ikd&password=hunter2", "http://db:8123/xxxxx", "hunter2"},
		{"webhook token in the path", "https://hooks.slack.com/services/T000/B000/XXXXtokenXXXX", "https://hooks.slack.com/xxxxx", "tokenXXXX"},
		{"webhook token in the query", "https://alerts.example.go.id/hook?token=abc123secret", "https://alerts.example.go.id/xxxxx", "abc123secret"},
		{"a fragment", "https://h.example#key=topsecret", "https://h.example/xxxxx", "topsecret"},
		{"IPv6 host", "nats://u:pw6secret@[::1]:4222", "nats://xxxxx@[::1]:4222", "pw6secret"},
		{"not a URL", "127.0.0.1:4222", "127.0.0.1:4222", ""},
		{"empty", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RedactURL(tt.in)
			if got != tt.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if tt.secret != "" && strings.Contains(got, tt.secret) {
				t.Errorf("RedactURL(%q) = %q keeps the secret", tt.in, got)
			}
		})
	}
}
