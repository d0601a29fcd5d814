package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var natsServer struct {
	once sync.Once
	path string
	err  error
}

// NATSServer returns the path of a nats-server binary built once per test
// process from the module version go.mod pins: the broker as its own
// process, for tests that SIGKILL it or check a configuration file with it
// (`nats-server -t`) exactly as the deployed release would.
func NATSServer(t testing.TB) string {
	t.Helper()
	natsServer.once.Do(func() {
		dir, err := os.MkdirTemp("", "ikd-nats-server-")
		if err != nil {
			natsServer.err = err
			return
		}
		natsServer.path = filepath.Join(dir, "nats-server")
		out, err := exec.Command("go", "build", "-o", natsServer.path, "github.com/nats-io/nats-server/v2").CombinedOutput()
		if err != nil {
			natsServer.err = fmt.Errorf("go build nats-server: %v\n%s", err, out)
		}
	})
	if natsServer.err != nil {
		t.Fatal(natsServer.err)
	}
	return natsServer.path
}
