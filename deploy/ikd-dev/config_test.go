package main

import (
	"testing"

	"github.com/ikd-pipeline/ikd/internal/config/configtest"
)

func TestConfigRefusesAValueThatBreaksIkdDevNamingItsVariable(t *testing.T) {
	configtest.Refuses[Config](t, []configtest.Refusal{
		{Variable: "IKD_DATA_DIR", Value: ""},
		{Variable: "IKD_NATS_LISTEN", Value: "4222"},
		{Variable: "IKD_CLICKHOUSE_LISTEN", Value: "localhost"},
		{Variable: "IKD_NATS_URL", Value: "localhost:4222"},
		{Variable: "IKD_CLICKHOUSE_DSN", Value: "localhost:8123"},
		{Variable: "IKD_CLICKHOUSE_PASSWORD", Value: "secret", Names: "IKD_CLICKHOUSE_USER"}, // without a user
		{Variable: "IKD_AGGREGATOR_BATCH_SIZE", Value: "0"},
		{Variable: "IKD_ALERTER_WEBHOOK_URL", Value: "ftp://example.org/hook"},
		{Variable: "IKD_STREAM_REPLICAS", Value: "9"},
		{Variable: "IKD_CLICKHOUSE_READ_MAX_THREADS", Value: "-2"},
		{Variable: "IKD_CLICKHOUSE_READ_MAX_THREADS", Value: "100000"},
		{Variable: "IKD_CLICKHOUSE_READ_NICE", Value: "-5"},
		{Variable: "IKD_CLICKHOUSE_READ_NICE", Value: "20"},
		{Variable: "IKD_METRICS_LISTEN", Value: ":9410"},
		{Variable: "IKD_METRICS_LISTEN", Value: "localhost"},
	})
}
