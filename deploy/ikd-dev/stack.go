package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/chhttp"
	"github.com/ikd-pipeline/ikd/internal/config"
	"github.com/ikd-pipeline/ikd/internal/embeddedbroker"
	"github.com/ikd-pipeline/ikd/internal/engine"
)

// servers are the embedded servers this process hosts; nil where an
// address was configured instead.
type servers struct {
	natsURL string
	// auth is how this process's components connect as each role: one
	// user per role on the embedded broker, IKD_NATS_* on an external one.
	auth     func(broker.Role) broker.Auth
	credsDir string
	dsn      string
	broker   *embeddedbroker.Broker
	conns    []*nats.Conn // the components' broker connections
	engine   *engine.Engine
	frontend *chhttp.Server
}

func startServers(cfg Config, logger *slog.Logger) (*servers, error) {
	s := &servers{natsURL: cfg.NatsURL, dsn: cfg.ClickHouseDSN, auth: func(broker.Role) broker.Auth { return cfg.NATS }}
	if s.dsn == "" {
		if err := s.startWarehouse(cfg, logger); err != nil {
			s.stop()
			return nil, err
		}
	}
	if s.natsURL == "" {
		host, port, err := splitHostPort(cfg.NatsListen)
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("IKD_NATS_LISTEN: %w", err)
		}
		if err := s.startBroker(cfg, host, port, logger); err != nil {
			s.stop()
			return nil, err
		}
	}
	return s, nil
}

// startBroker hosts the embedded broker with a user per role, whose
// passwords are made at the first start and kept in the data directory.
func (s *servers) startBroker(cfg Config, host string, port int, logger *slog.Logger) error {
	dir := filepath.Join(cfg.DataDir, "nats")
	s.credsDir = filepath.Join(dir, "credentials")
	creds, err := embeddedbroker.LoadOrCreateCredentials(s.credsDir)
	if err != nil {
		return err
	}
	b, err := embeddedbroker.Start(embeddedbroker.Config{
		Dir: dir, Host: host, Port: port, Monitor: cfg.NatsMonitorListen, Users: creds.Users(), Logger: logger,
	})
	if err != nil {
		return fmt.Errorf("%w (IKD_NATS_LISTEN %s, IKD_NATS_MONITOR_LISTEN %s)", err, cfg.NatsListen, cfg.NatsMonitorListen)
	}
	s.broker, s.natsURL, s.auth = b, b.URL(), creds.Auth
	return creds.WriteEnvFiles(s.credsDir, b.URL())
}

func (s *servers) startWarehouse(cfg Config, logger *slog.Logger) error {
	eng, err := engine.Open(filepath.Join(cfg.DataDir, "clickhouse"), cfg.ChdbLib)
	if err != nil {
		return err
	}
	s.engine = eng
	front, err := chhttp.Listen(eng, chhttp.Config{
		Addr: cfg.ClickHouseListen, User: cfg.ClickHouseUser, Password: cfg.ClickHousePassword,
		AnalystUser: cfg.ClickHouseAnalystUser, AnalystPassword: cfg.ClickHouseAnalystPassword,
		TempDir: filepath.Join(cfg.DataDir, "tmp"), UserFiles: filepath.Join(cfg.DataDir, "user_files"),
		MaxBodyBytes: cfg.ClickHouseMaxBody, MaxDecompressedBytes: cfg.ClickHouseMaxDecompressed,
		ReadTimeout: cfg.ClickHouseReadTimeout, MaxExecutionTime: cfg.ClickHouseMaxExecutionTime,
		ReadMaxThreads: cfg.ClickHouseReadMaxThreads, ReadNice: cfg.ClickHouseReadNice,
		Logger: logger,
	})
	if err != nil {
		return err
	}
	s.frontend = front
	u := url.URL{Scheme: "http", Host: front.Addr()}
	if cfg.ClickHouseUser != "" {
		u.User = url.UserPassword(cfg.ClickHouseUser, cfg.ClickHousePassword)
	}
	s.dsn = u.String()
	return nil
}

func (s *servers) describe(dataDir string, w *os.File) {
	abs, _ := filepath.Abs(dataDir)
	fmt.Fprintf(w, "ikd-dev\n  data directory  %s\n", abs)
	if s.broker != nil {
		fmt.Fprintf(w, "  NATS JetStream  %s   (embedded nats-server, syncing every write; monitoring %s)\n", s.natsURL, s.broker.MonitorURL())
		fmt.Fprintf(w, "                  users per role, no anonymous access; as the admin try: . %s && nats stream ls\n",
			embeddedbroker.EnvFile(s.credsDir, broker.RoleAdmin))
	} else {
		fmt.Fprintf(w, "  NATS JetStream  %s   (external)\n", config.RedactURL(s.natsURL))
	}
	if s.engine != nil {
		fmt.Fprintf(w, "  ClickHouse      http://%s   (embedded engine %s; try: curl 'http://%s/?query=SELECT+version()')\n",
			s.frontend.Addr(), s.engine.Version(), s.frontend.Addr())
	} else {
		fmt.Fprintf(w, "  ClickHouse      %s   (external)\n", config.RedactURL(s.dsn))
	}
}

// stop drains the components' connections, then shuts the embedded
// servers down in the reverse order of their start.
func (s *servers) stop() {
	for _, nc := range s.conns {
		_ = nc.Drain()
	}
	if s.broker != nil {
		s.broker.Shutdown()
	}
	if s.frontend != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.frontend.Close(ctx)
		cancel()
	}
	if s.engine != nil {
		_ = s.engine.Close()
	}
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, errors.New("port must be a number")
	}
	return host, port, nil
}
