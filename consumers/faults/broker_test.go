package faults_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// The broker of the fault tests is nats-server as its own process, at the
// version go.mod pins, so that it can be SIGKILLed like a real one.
func natsServerBinary(t *testing.T) string {
	t.Helper()
	return testenv.Program(t, testenv.NATSServer)
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
	cmd := exec.Command(natsServerBinary(t), "--config", brokerConfigFile(t, dir, port))
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
		auth, err := testenv.Auth(broker.RoleAdmin).Options()
		if err != nil {
			return err
		}
		nc, err := nats.Connect(url, append(auth, nats.Timeout(time.Second))...)
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

// brokerConfigFile writes the configuration of a fault broker on dir and
// port, as a deployment's: every write synced before it is acknowledged,
// the test users of every role with their permissions, nobody anonymous.
// nats-server reads JSON as its configuration language.
func brokerConfigFile(t *testing.T, dir string, port int) string {
	t.Helper()
	list := func(subjects []string) map[string][]string {
		if len(subjects) == 0 {
			return map[string][]string{"deny": {">"}}
		}
		return map[string][]string{"allow": subjects}
	}
	var users []map[string]any
	for _, role := range broker.Roles {
		auth := testenv.Auth(role)
		user := map[string]any{"user": auth.User, "password": auth.Password}
		p, err := broker.RolePermissions(role, auth.User, "")
		if err != nil {
			t.Fatal(err)
		}
		if p.Publish != nil {
			user["permissions"] = map[string]any{"publish": list(p.Publish), "subscribe": list(p.Subscribe)}
		}
		users = append(users, user)
	}
	var conf bytes.Buffer
	enc := json.NewEncoder(&conf)
	enc.SetEscapeHTML(false) // the configuration parser knows no \u escapes, and ">" is a wildcard
	if err := enc.Encode(map[string]any{
		"listen":        fmt.Sprintf("127.0.0.1:%d", port),
		"server_name":   "ikd-faults",
		"jetstream":     map[string]any{"store_dir": dir, "sync_interval": "always"},
		"authorization": map[string]any{"users": users},
	}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats-server.conf")
	if err := os.WriteFile(path, conf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// kill SIGKILLs the broker and waits until it is gone: no flush, no goodbye
// to its clients.
func (b *brokerProc) kill() {
	_ = b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.done
}
