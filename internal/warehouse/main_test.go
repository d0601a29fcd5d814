package warehouse_test

import (
	"os"
	"testing"

	"github.com/ikd-pipeline/ikd/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
