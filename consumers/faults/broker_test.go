package faults_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// The broker of the fault tests is nats-server as its own process, at the
// version go.mod pins, so that it can be SIGKILLed like a real one.
var natsServer struct {
	once sync.Once
	path string
	err  error
}

func natsServerBinary(t *testing.T) string {
	t.Helper()
	natsServer.once.Do(func() {
		dir, err := os.MkdirTemp("", "ikd-faults-nats-")
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

// brokerProc is one run of nats-server on a store directory and port.
type brokerProc struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

// startBroker runs nats-server with JetStream on dir and port and returns
// once it answers JetStream requests.
func startBroker(t *testing.T, dir string, port int) *brokerProc {
	t.Helper()
	cmd := exec.Command(natsServerBinary(t), "-js", "-sd", dir, "-a", "127.0.0.1", "-p", strconv.Itoa(port),
		"--server_name", "ikd-faults")
	b := &brokerProc{cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = b.out, b.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	go func() { _ = cmd.Wait(); close(b.done) }()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	err := testenv.Await(time.Minute, func() error {
		select {
		case <-b.done:
			return fmt.Errorf("nats-server exited:\n%s", tail(b.out.String(), 2000))
		default:
		}
		nc, err := nats.Connect(url, nats.Timeout(time.Second))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err = js.AccountInfo(ctx)
		return err
	})
	if err != nil {
		b.kill()
		t.Fatalf("nats-server on %s not ready: %v", url, err)
	}
	return b
}

// kill SIGKILLs the broker and waits until it is gone: no flush, no goodbye
// to its clients.
func (b *brokerProc) kill() {
	_ = b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.done
}
