package main

import (
	"testing"

	"github.com/ikd-pipeline/ikd/internal/config/configtest"
)

func TestStartRefusesAValueThatBreaksTheAlerterNamingItsVariable(t *testing.T) {
	configtest.Refuses[Config](t, []configtest.Refusal{
		{Variable: "IKD_METRICS_LISTEN", Value: ":9412"},
		{Variable: "IKD_METRICS_LISTEN", Value: "127.0.0.1"},
		{Variable: "IKD_NATS_URL", Value: "127.0.0.1:4222"},
	})
}
