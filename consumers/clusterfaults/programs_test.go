package clusterfaults_test

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// program is one aggregator or alerter process.
type program struct {
	name string
	cmd  *exec.Cmd
	out  *logTail
	done chan struct{}
}

// startProgram runs the main package pkg as role against every node of c
// and the warehouse at dsn, with the streams at three replicas like the
// admin provisioned them.
func startProgram(t *testing.T, c *cluster, pkg string, role broker.Role, dsn string, extra ...string) *program {
	t.Helper()
	cmd := exec.Command(testenv.Program(t, pkg))
	cmd.Env = os.Environ()
	for k, v := range testenv.BrokerEnv(c.urls(), role) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env,
		"IKD_CLICKHOUSE_DSN="+dsn,
		"IKD_STREAM_REPLICAS=3",
		// Several programs on one machine: each its own metrics port.
		"IKD_METRICS_LISTEN=127.0.0.1:0",
	)
	cmd.Env = append(cmd.Env, extra...)
	p := &program{name: pkg, cmd: cmd, out: &logTail{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		// What the program said last is most of what explains a failure.
		if t.Failed() {
			t.Logf("%s, the end of its output:\n%s", pkg, p.out.tail(3000))
		}
	})
	return p
}

// exited reports whether the program ended by itself, with its output's end.
func (p *program) exited() (string, bool) {
	select {
	case <-p.done:
		return p.out.tail(3000), true
	default:
		return "", false
	}
}

// stop ends the program with SIGTERM (SIGKILL after 10s).
func (p *program) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}
