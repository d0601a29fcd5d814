// Package clusterfaults_test runs the pipeline against a three-node NATS
// JetStream cluster of real nats-server processes, started from the shipped
// node configurations (deploy/nats/cluster), with the streams at three
// replicas; it kills and restarts nodes while events are published and
// drained, and checks after each fault that every acknowledged event is
// counted exactly once, and at the end that the alerter neither missed nor
// repeated a transition.
//
// `go test -short` drives a few thousand events; IKD_CHAOS=1 (make chaos)
// drives 100,000.
package clusterfaults_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// shippedNodes holds the node configurations the project ships.
const shippedNodes = "../../deploy/nats/cluster"

// node is one nats-server of the cluster: the shipped node.conf under the
// name of a shipped nats-N.conf, run on loopback ports of its own and a store
// directory that outlives its runs.
type node struct {
	name                   string // server_name, from its shipped nats-N.conf
	conf                   string // includes node.conf
	dir                    string
	client, route, monitor int

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *logTail
	done chan struct{}
}

type cluster struct {
	t     *testing.T
	nodes []*node
}

// startCluster starts the three shipped nodes on free loopback ports and
// waits until each is healthy. The users' password hashes, which the shipped
// configurations read from the environment, are the test credentials'.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	setPasswordHashes(t)
	c := &cluster{t: t}
	for i := 1; i <= 3; i++ {
		conf, err := filepath.Abs(filepath.Join(shippedNodes, fmt.Sprintf("nats-%d.conf", i)))
		if err != nil {
			t.Fatal(err)
		}
		opts, err := server.ProcessConfigFile(conf)
		if err != nil {
			t.Fatalf("%s: %v", conf, err)
		}
		n := &node{
			name: opts.ServerName, dir: testenv.StoreDir(t),
			client: testenv.FreePort(t), route: testenv.FreePort(t), monitor: testenv.FreePort(t),
		}
		n.conf = localNodeConf(t, n.name, n.dir)
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.kill()
		}
	})
	for _, n := range c.nodes {
		c.launch(n)
	}
	for _, n := range c.nodes {
		c.healthy(n)
	}
	return c
}

// localNodeConf writes the configuration of one node of a cluster on one
// machine: its own name and store, and everything else from the shipped
// node.conf.
func localNodeConf(t *testing.T, name, store string) string {
	t.Helper()
	shared, err := filepath.Abs(filepath.Join(shippedNodes, "node.conf"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// nats-server resolves an include relative to the including file.
	rel, err := filepath.Rel(dir, shared)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, name+".conf")
	text := fmt.Sprintf("server_name: %q\nstore_dir: %q\ninclude %q\n", name, store, rel)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

// setPasswordHashes gives each role's test user its password as the bcrypt
// hash the shipped authorization.conf reads (the lowest cost: tests
// reconnect often).
func setPasswordHashes(t *testing.T) {
	t.Helper()
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	for _, role := range broker.Roles {
		t.Setenv("IKD_NATS_"+strings.ToUpper(string(role))+"_HASH", hash(testenv.Auth(role).Password))
	}
	// The one province reader the shipped file carries; nobody logs in as it here.
	unused := make([]byte, 16)
	_, _ = rand.Read(unused)
	t.Setenv("IKD_NATS_ALERTS_17_HASH", hash(hex.EncodeToString(unused)))
}

// urls are the client URLs of every node, as the programs are given them
// so that they reconnect to whichever node is up.
func (c *cluster) urls() string {
	var us []string
	for _, n := range c.nodes {
		us = append(us, fmt.Sprintf("nats://127.0.0.1:%d", n.client))
	}
	return strings.Join(us, ",")
}

// launch runs n with its loopback ports and routes given as flags, which
// override node.conf's, as README "NATS cluster" shows for running the
// three nodes on one machine.
func (c *cluster) launch(n *node) {
	c.t.Helper()
	var routes []string
	for _, o := range c.nodes {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", o.route))
	}
	cmd := exec.Command(testenv.Program(c.t, testenv.NATSServer),
		"-c", n.conf, "-a", "127.0.0.1", "-p", fmt.Sprint(n.client), "-m", fmt.Sprint(n.monitor),
		"--cluster", fmt.Sprintf("nats://127.0.0.1:%d", n.route), "--routes", strings.Join(routes, ","))
	out := &logTail{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", n.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	n.mu.Lock()
	n.cmd, n.out, n.done = cmd, out, done
	n.mu.Unlock()
}

// healthy waits until n's monitoring says it is healthy: JetStream is up
// and every stream and consumer it holds has caught up.
func (c *cluster) healthy(n *node) {
	c.t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", n.monitor)
	n.mu.Lock()
	done, out := n.done, n.out
	n.mu.Unlock()
	exited := false
	testenv.Eventually(c.t, 2*time.Minute, func() error {
		select {
		case <-done:
			exited = true
			return nil
		default:
		}
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: /healthz answers %s", n.name, resp.Status)
		}
		return nil
	})
	if exited {
		c.t.Fatalf("%s exited:\n%s", n.name, out.tail(2000))
	}
}

// kill SIGKILLs n and waits until it is gone: no flush, no goodbye.
func (n *node) kill() { n.signal(syscall.SIGKILL) }

// stop asks n to shut down (SIGTERM), as a rolling restart does.
func (n *node) stop() { n.signal(syscall.SIGTERM) }

func (n *node) signal(sig syscall.Signal) {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

// restart starts n again on its ports and store and waits until it is healthy.
func (c *cluster) restart(n *node) {
	c.t.Helper()
	c.launch(n)
	c.healthy(n)
}

// node returns the node named name.
func (c *cluster) node(name string) *node {
	c.t.Helper()
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	c.t.Fatalf("no node named %q", name)
	return nil
}

// leader returns the node that leads stream, and one that follows it.
func (c *cluster) leader(js jetstream.JetStream, stream string) (leader, follower *node) {
	c.t.Helper()
	testenv.Eventually(c.t, time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		ci := s.CachedInfo().Cluster
		if ci == nil || ci.Leader == "" || len(ci.Replicas) == 0 {
			return fmt.Errorf("stream %s has no leader and followers yet: %+v", stream, ci)
		}
		leader, follower = c.node(ci.Leader), c.node(ci.Replicas[0].Name)
		return nil
	})
	return leader, follower
}

// logTail keeps the end of a process's output, for failure messages.
type logTail struct {
	mu sync.Mutex
	b  []byte
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	if len(l.b) > 1<<20 {
		l.b = append([]byte(nil), l.b[len(l.b)-(1<<19):]...)
	}
	return len(p), nil
}

func (l *logTail) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b[max(0, len(l.b)-n):])
}

// copies describes each node's own copy of stream, from its monitoring
// (/jsz): for a failure message when the nodes disagree.
func (c *cluster) copies(stream string) string {
	var out []string
	for _, n := range c.nodes {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/jsz?streams=true", n.monitor))
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", n.name, err))
			continue
		}
		var jsz struct {
			Accounts []struct {
				Streams []struct {
					Name  string `json:"name"`
					State struct {
						Msgs     uint64 `json:"messages"`
						FirstSeq uint64 `json:"first_seq"`
						LastSeq  uint64 `json:"last_seq"`
						Deleted  int    `json:"num_deleted"`
					} `json:"state"`
				} `json:"stream_detail"`
			} `json:"account_details"`
		}
		err = json.NewDecoder(resp.Body).Decode(&jsz)
		resp.Body.Close()
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", n.name, err))
			continue
		}
		for _, a := range jsz.Accounts {
			for _, s := range a.Streams {
				if s.Name == stream {
					out = append(out, fmt.Sprintf("%s: %d messages, sequences %d..%d, %d deleted", n.name, s.State.Msgs, s.State.FirstSeq, s.State.LastSeq, s.State.Deleted))
				}
			}
		}
	}
	return strings.Join(out, "; ")
}
