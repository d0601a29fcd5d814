package main

import (
	"testing"

	"github.com/ikd-pipeline/ikd/internal/config/configtest"
)

func TestConfigRefusesAValueThatBreaksTheCounterNamingItsVariable(t *testing.T) {
	configtest.Refuses[Config](t, []configtest.Refusal{
		{Variable: "IKD_NATS_URL", Value: "127.0.0.1:4222"},
		{Variable: "IKD_NATS_URL", Value: "nats://a:4222,https://b"},
		{Variable: "IKD_FUTURE_TOLERANCE", Value: "-1m"},
		{Variable: "IKD_STREAM_REPLICAS", Value: "-1"},
	})
}
