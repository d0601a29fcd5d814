// Package embeddedbroker runs nats-server with JetStream inside this process,
// for ikd-dev, ikd-bench and tests; production programs never link it.
// It syncs every write to disk before acknowledging it, serves the
// monitoring endpoint on loopback, and admits only the users it is given.
package embeddedbroker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"

	"github.com/ikd-pipeline/ikd/internal/broker"
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

// Config configures a nats-server running inside this process.
type Config struct {
	Dir  string // JetStream storage lives in Dir/jetstream (created if missing)
	Host string // default "127.0.0.1"
	Port int    // default 4222; -1 picks a free port (tests)
	// Monitor is host:port of the HTTP monitoring endpoint (/varz, /jsz,
	// /healthz); port 0 picks a free one, "" serves none.
	Monitor string
	// Users are who may connect; there is no anonymous access, so at least
	// one is needed.
	Users []User
	// TLS, when set, makes clients connect with TLS (tls:// URLs).
	TLS *tls.Config
	// SyncInterval zero (the default) puts every write on disk before it is
	// acknowledged. A positive one fsyncs only that often, as nats-server
	// does by default (2m); only ikd-bench sets it, to measure the cost.
	SyncInterval time.Duration
	Logger       *slog.Logger
}

// User is one broker user: a name and password, or a public nkey, with the
// permissions of its role.
type User struct {
	Name     string
	Password string
	NKey     string      // public nkey (U...), instead of Name and Password
	Role     broker.Role // what it may do
	Province string      // limits broker.RoleAlerts to one province
}

// Broker is nats-server running in this process with JetStream file storage.
type Broker struct {
	srv    *server.Server
	logger *slog.Logger
	lock   *dirlock.Lock
}

// Start starts nats-server with JetStream file storage in cfg.Dir and
// returns once it accepts client connections.
func Start(cfg Config) (*Broker, error) {
	if cfg.Dir == "" {
		return nil, errors.New("start embedded broker: Dir is empty; JetStream needs a directory for its file store")
	}
	if len(cfg.Users) == 0 {
		return nil, errors.New("start embedded broker: no users; anonymous access is refused, so give it at least an admin")
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
		if err := probe(addr); err != nil {
			lock.Release()
			return nil, fmt.Errorf("start embedded broker: %w", err)
		}
	}
	if cfg.Monitor != "" && !strings.HasSuffix(cfg.Monitor, ":0") {
		if err := probe(cfg.Monitor); err != nil {
			lock.Release()
			return nil, fmt.Errorf("start embedded broker: monitoring: %w", err)
		}
	}
	opts, err := options(cfg)
	if err != nil {
		lock.Release()
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	e, err := startServer(opts, logger)
	if err != nil {
		lock.Release()
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	e.lock = lock
	logger.Info("embedded broker started", "url", e.URL(), "store_dir", storeDir, "monitor", e.MonitorURL(), "users", len(cfg.Users))
	return e, nil
}

// probe listens on addr and closes at once: whether the address is free.
func probe(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return listenError(addr, err)
	}
	if err := l.Close(); err != nil {
		return fmt.Errorf("release probe listener on %s: %w", addr, err)
	}
	return nil
}

// options are nats-server's options for cfg, which already has its
// defaults applied.
func options(cfg Config) (*server.Options, error) {
	opts := &server.Options{
		ServerName: serverName,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		// The server appends "jetstream" itself, so this yields Dir/jetstream.
		StoreDir: cfg.Dir,
		// An acknowledged event must be on disk: nats-server's default
		// fsyncs every two minutes, and a crash in between loses what it
		// acknowledged (Jepsen, NATS 2.12.1).
		SyncAlways: cfg.SyncInterval == 0,
		// The owning program handles SIGINT/SIGTERM and calls Shutdown.
		NoSigs: true,
		// Logging goes through slogAdapter (set below), never the server's own stderr logger.
		NoLog: true,
	}
	if cfg.SyncInterval > 0 {
		opts.SyncInterval = cfg.SyncInterval
	}
	if cfg.Monitor != "" {
		host, port, err := monitorAddr(cfg.Monitor)
		if err != nil {
			return nil, err
		}
		opts.HTTPHost, opts.HTTPPort = host, port
	}
	if cfg.TLS != nil {
		opts.TLSConfig, opts.TLS, opts.TLSTimeout = cfg.TLS, true, 2
	}
	for _, u := range cfg.Users {
		if err := addUser(opts, u); err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// monitorAddr parses host:port; port 0 means any free port, which
// nats-server spells -1 (its 0 turns monitoring off).
func monitorAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("monitor address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("monitor address %q: port must be a number from 0 to 65535", addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// addUser gives u, with its role's permissions, to opts.
func addUser(opts *server.Options, u User) error {
	inbox := u.Name
	if inbox == "" {
		inbox = string(u.Role)
	}
	perms, err := broker.RolePermissions(u.Role, inbox, u.Province)
	if err != nil {
		return fmt.Errorf("user %s: %w", inbox, err)
	}
	sp := serverPermissions(perms)
	switch {
	case u.NKey != "" && u.Name == "":
		opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: u.NKey, Permissions: sp})
	case u.NKey == "" && u.Name != "" && u.Password != "":
		// The server keeps only a bcrypt hash. The lowest cost is enough:
		// the passwords are random, far beyond guessing at any cost.
		hash, err := bcrypt.GenerateFromPassword([]byte(u.Password), bcrypt.MinCost)
		if err != nil {
			return fmt.Errorf("user %s: %w", u.Name, err)
		}
		opts.Users = append(opts.Users, &server.User{Username: u.Name, Password: string(hash), Permissions: sp})
	default:
		return fmt.Errorf("user %s: give a name and a password, or an nkey alone", inbox)
	}
	return nil
}

// serverPermissions translates p; nil lists stay nil, meaning no limit.
func serverPermissions(p broker.Permissions) *server.Permissions {
	if p.Publish == nil && p.Subscribe == nil {
		return nil
	}
	sp := &server.Permissions{}
	if p.Publish != nil {
		// An empty allow list would mean no limit; deny everything instead.
		sp.Publish = &server.SubjectPermission{Allow: p.Publish}
		if len(p.Publish) == 0 {
			sp.Publish = &server.SubjectPermission{Deny: []string{">"}}
		}
	}
	if p.Subscribe != nil {
		sp.Subscribe = &server.SubjectPermission{Allow: p.Subscribe}
		if len(p.Subscribe) == 0 {
			sp.Subscribe = &server.SubjectPermission{Deny: []string{">"}}
		}
	}
	return sp
}

// startServer runs nats-server with opts.
func startServer(opts *server.Options, logger *slog.Logger) (*Broker, error) {
	addr := net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	adapter := &slogAdapter{logger: logger}
	srv.SetLoggerV2(adapter, false, false, false)

	// Start runs JetStream setup and binds the listener synchronously, and
	// reports failures only through Fatalf, which the adapter records.
	srv.Start()
	fail := func(err error) (*Broker, error) {
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
	return &Broker{srv: srv, logger: logger}, nil
}

// URL is the client URL of the running server, e.g. nats://127.0.0.1:4222,
// or tls://127.0.0.1:4222 when it requires TLS.
func (e *Broker) URL() string {
	return e.srv.ClientURL()
}

// MonitorURL is the base URL of the monitoring endpoint, e.g.
// http://127.0.0.1:8222, or "" when it serves none.
func (e *Broker) MonitorURL() string {
	addr := e.srv.MonitorAddr()
	if addr == nil {
		return ""
	}
	return "http://" + addr.String()
}

// Shutdown stops the server and waits until JetStream has flushed its store;
// calling it more than once is harmless.
func (e *Broker) Shutdown() {
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
