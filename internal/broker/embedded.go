// Package broker runs the embedded NATS JetStream server, connects clients to
// a broker, and declares the project's streams.
package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ikd-pipeline/ikd/internal/dirlock"
)

const (
	defaultHost = "127.0.0.1"
	defaultPort = 4222

	// serverName is fixed so that every start on the same Dir is the same
	// JetStream node and reopens the same file store instead of a new one.
	serverName = "ikd-embedded"

	readyTimeout = 10 * time.Second
)

// EmbeddedConfig configures a nats-server running inside this process.
type EmbeddedConfig struct {
	Dir    string // JetStream storage lives in Dir/jetstream (created if missing)
	Host   string // default "127.0.0.1"
	Port   int    // default 4222; -1 picks a free port (tests)
	Logger *slog.Logger
}

// Embedded is nats-server running in this process with JetStream file storage.
type Embedded struct {
	srv    *server.Server
	logger *slog.Logger
	lock   *dirlock.Lock
}

// StartEmbedded starts nats-server with JetStream file storage in cfg.Dir and
// returns once it accepts client connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, errors.New("start embedded broker: Dir is empty; JetStream needs a directory for its file store")
	}
	if cfg.Host == "" {
		cfg.Host = defaultHost
	}
	if cfg.Port == 0 {
		cfg.Port = defaultPort
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	logger := cfg.Logger.With("component", "nats-server")

	storeDir := filepath.Join(cfg.Dir, server.JetStreamStoreDir)
	if err := os.MkdirAll(storeDir, 0o750); err != nil {
		return nil, fmt.Errorf("start embedded broker: create store dir: %w", err)
	}
	lock, err := dirlock.Acquire(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}

	// nats-server opens the JetStream store before it binds the client port,
	// so checking the port first keeps a second ikd-dev from touching a store
	// that a running one owns.
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	if cfg.Port > 0 {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			lock.Release()
			return nil, fmt.Errorf("start embedded broker: %w", listenError(addr, err))
		}
		if err := l.Close(); err != nil {
			lock.Release()
			return nil, fmt.Errorf("start embedded broker: release probe listener on %s: %w", addr, err)
		}
	}
	e, err := startServer(cfg, logger)
	if err != nil {
		lock.Release()
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	e.lock = lock
	logger.Info("embedded broker started", "url", e.URL(), "store_dir", storeDir)
	return e, nil
}

// startServer runs nats-server for cfg, which already has its defaults applied.
func startServer(cfg EmbeddedConfig, logger *slog.Logger) (*Embedded, error) {
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	opts := &server.Options{
		ServerName: serverName,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		// The server appends "jetstream" itself, so this yields Dir/jetstream.
		StoreDir: cfg.Dir,
		// The owning program handles SIGINT/SIGTERM and calls Shutdown.
		NoSigs: true,
		// Logging goes through slogAdapter (set below), never the server's own stderr logger.
		NoLog: true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	adapter := &slogAdapter{logger: logger}
	srv.SetLoggerV2(adapter, false, false, false)

	// Start runs JetStream setup and binds the listener synchronously, and
	// reports failures only through Fatalf, which the adapter records.
	srv.Start()
	fail := func(err error) (*Embedded, error) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, err
	}
	if ferr := adapter.fatal(); ferr != nil {
		if errors.Is(ferr, syscall.EADDRINUSE) {
			ferr = listenError(addr, ferr)
		}
		return fail(ferr)
	}
	if !srv.ReadyForConnections(readyTimeout) {
		return fail(fmt.Errorf("not ready for connections on %s after %s", addr, readyTimeout))
	}
	if !srv.JetStreamEnabled() {
		return fail(errors.New("server started without JetStream"))
	}
	return &Embedded{srv: srv, logger: logger}, nil
}

// URL is the client URL of the running server, e.g. nats://127.0.0.1:4222.
func (e *Embedded) URL() string {
	return e.srv.ClientURL()
}

// Shutdown stops the server and waits until JetStream has flushed its store;
// calling it more than once is harmless.
func (e *Embedded) Shutdown() {
	if e == nil || e.srv == nil {
		return
	}
	if e.srv.Running() {
		e.logger.Info("embedded broker stopping", "url", e.URL())
	}
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	_ = e.lock.Release()
}

// portInUseError keeps the OS error reachable (errors.Is(err, syscall.EADDRINUSE))
// while telling a person the likely cause.
type portInUseError struct {
	addr string
	err  error
}

func (p *portInUseError) Error() string {
	return fmt.Sprintf("listen %s: address already in use — is another ikd-dev running?", p.addr)
}

func (p *portInUseError) Unwrap() error { return p.err }

func listenError(addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return &portInUseError{addr: addr, err: err}
	}
	return fmt.Errorf("listen %s: %w", addr, err)
}

// slogAdapter routes nats-server logs to slog: notices and debug go to Debug so
// a healthy broker is silent, warnings and errors stay visible, and Fatalf is
// recorded instead of exiting the process.
type slogAdapter struct {
	logger *slog.Logger

	mu       sync.Mutex
	firstErr error
}

func (a *slogAdapter) Noticef(format string, v ...any) {
	a.logger.Debug(fmt.Sprintf(format, v...))
}

func (a *slogAdapter) Warnf(format string, v ...any) {
	a.logger.Warn(fmt.Sprintf(format, v...))
}

func (a *slogAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	a.logger.Error(msg, "fatal", true)

	// Keep the underlying error (if the server passed one) so callers can
	// match it, e.g. EADDRINUSE from the listener.
	var cause error
	for _, arg := range v {
		if err, ok := arg.(error); ok {
			cause = err
			break
		}
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if a.firstErr == nil {
		a.firstErr = &fatalError{msg: msg, cause: cause}
	}
}

func (a *slogAdapter) Errorf(format string, v ...any) {
	a.logger.Error(fmt.Sprintf(format, v...))
}

func (a *slogAdapter) Debugf(format string, v ...any) {
	a.logger.Debug(fmt.Sprintf(format, v...))
}

func (a *slogAdapter) Tracef(format string, v ...any) {
	a.logger.Debug(fmt.Sprintf(format, v...))
}

// fatalError is what the server reported through Fatalf; its text already
// includes the cause, which stays reachable for errors.Is.
type fatalError struct {
	msg   string
	cause error
}

func (f *fatalError) Error() string { return f.msg }

func (f *fatalError) Unwrap() error { return f.cause }

func (a *slogAdapter) fatal() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.firstErr
}
