package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"testing"
)

// NATSServer is nats-server's main package, built at the version go.mod
// pins by the tests that run the broker as its own process.
const NATSServer = "github.com/nats-io/nats-server/v2"

// built holds each program built in this test process, by package path.
var built sync.Map // string -> func() (string, error)

// Program builds the main package pkg once per test process and returns the
// binary's path: for tests that run a program as a real process, to SIGKILL
// it or to run several. The binary is removed by Run.
func Program(t testing.TB, pkg string) string {
	t.Helper()
	build, _ := built.LoadOrStore(pkg, sync.OnceValues(func() (string, error) {
		dir, err := os.MkdirTemp("", "ikd-test-bin-")
		if err != nil {
			return "", err
		}
		programDirs.add(dir)
		bin := filepath.Join(dir, path.Base(pkg))
		if path.Base(pkg) == "v2" { // nats-server's module path ends in its major version
			bin = filepath.Join(dir, path.Base(path.Dir(pkg)))
		}
		out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
		return bin, nil
	}))
	bin, err := build.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// programDirs are the directories of the built programs, removed by Run.
var programDirs dirs

type dirs struct {
	mu   sync.Mutex
	list []string
}

func (d *dirs) add(dir string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.list = append(d.list, dir)
}

func (d *dirs) removeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, dir := range d.list {
		_ = os.RemoveAll(dir)
	}
	d.list = nil
}
