package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/ikd-pipeline/ikd/internal/broker"
)

// aggregatorProcess is bin/ikd-aggregator run as its own process, as in
// production, so that the memory and CPU measured are the aggregator's own
// and its garbage collector does not scan the embedded broker's heap.
type aggregatorProcess struct {
	cmd       *exec.Cmd
	done      chan error
	pprofAddr string
}

// buildAggregator compiles the aggregator into dir; the bench runs from the
// repository root, as `make bench` does.
func buildAggregator(dir string) (string, error) {
	bin := filepath.Join(dir, "ikd-aggregator")
	out, err := exec.Command("go", "build", "-o", bin, "./consumers/ikd-aggregator").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build ikd-aggregator (run the bench from the repository root): %v\n%s", err, out)
	}
	return bin, nil
}

func startAggregator(bin, natsURL string, auth broker.Auth, dsn string, f flags) (*aggregatorProcess, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	pprofAddr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"IKD_NATS_URL="+natsURL,
		"IKD_NATS_USER="+auth.User,
		"IKD_NATS_PASSWORD="+auth.Password,
		"IKD_CLICKHOUSE_DSN="+dsn,
		"IKD_AGGREGATOR_BATCH_SIZE="+strconv.Itoa(f.batchSize),
		"IKD_AGGREGATOR_FLUSH_INTERVAL="+f.flush.String(),
		"IKD_PPROF_ADDR="+pprofAddr,
		// Any free port: the default 9411 may be another aggregator's.
		"IKD_METRICS_LISTEN=127.0.0.1:0",
	)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ikd-aggregator: %w", err)
	}
	p := &aggregatorProcess{cmd: cmd, done: make(chan error, 1), pprofAddr: pprofAddr}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// peakRSS is the process's peak resident set (VmHWM) since it started.
func (p *aggregatorProcess) peakRSS() uint64 {
	return procStatus(p.cmd.Process.Pid, "VmHWM")
}

// cpuProfile saves a CPU profile of the next d of the aggregator's life.
func (p *aggregatorProcess) cpuProfile(path string, d time.Duration) error {
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.pprofAddr, int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// stop ends the aggregator as an operator would, with SIGTERM.
func (p *aggregatorProcess) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		return fmt.Errorf("ikd-aggregator did not stop within 30 s of SIGTERM")
	}
}
