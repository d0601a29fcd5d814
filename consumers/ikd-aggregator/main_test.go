package main

import (
	"testing"

	"github.com/ikd-pipeline/ikd/internal/config/configtest"
)

func TestStartRefusesAValueThatBreaksTheAggregatorNamingItsVariable(t *testing.T) {
	configtest.Refuses[Config](t, []configtest.Refusal{
		{Variable: "IKD_AGGREGATOR_BATCH_SIZE", Value: "0"},
		{Variable: "IKD_AGGREGATOR_RETRY_MAX_INTERVAL", Value: "0s"},
		{Variable: "IKD_AGGREGATOR_MAX_DELIVER", Value: "0"},
		{Variable: "IKD_AGGREGATOR_FLUSH_INTERVAL", Value: "-1s"},
		{Variable: "IKD_AGGREGATOR_DURABLE", Value: " "},
		{Variable: "IKD_NATS_URL", Value: "127.0.0.1:4222"},
		{Variable: "IKD_CLICKHOUSE_DSN", Value: "mysql://db:3306"},
		{Variable: "IKD_CLICKHOUSE_CLUSTER", Value: "ikd-prod"},
		{Variable: "IKD_STREAM_REPLICAS", Value: "7"},
		{Variable: "IKD_STREAM_DUPLICATE_WINDOW", Value: "-1m"},
		{Variable: "IKD_PPROF_ADDR", Value: "0.0.0.0:6060"},
		{Variable: "IKD_METRICS_LISTEN", Value: ":9411"},
	})
}
