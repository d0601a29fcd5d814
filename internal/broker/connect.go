// Package broker is the programs' side of the NATS JetStream broker: connecting
// with credentials, what each role may do, and the project's streams.
package broker

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ikd-pipeline/ikd/internal/config"
)

const (
	// dialTimeout bounds the first connect so a missing broker fails fast at startup.
	dialTimeout = 2 * time.Second
	// reconnectWait is short because the broker is usually local and restarts quickly.
	reconnectWait = 250 * time.Millisecond
	// reconnectBufSize holds publishes made while disconnected; 16MiB is
	// thousands of events, enough to ride out a broker restart.
	reconnectBufSize = 16 * 1024 * 1024
)

// Connect dials the NATS server at url as auth for a long-running service:
// the first connect fails fast, after that the connection reconnects forever.
func Connect(url, name string, auth Auth, logger *slog.Logger) (*nats.Conn, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "nats", "name", name)
	// The URL may carry a password or token: logs and errors get its hosts only.
	shown := config.RedactURL(url)

	authOpts, err := auth.Options()
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", shown, err)
	}
	nc, err := nats.Connect(url, append(authOpts,
		nats.Name(name),
		nats.Timeout(dialTimeout),
		// A broker that is absent at startup is a configuration problem to report, not to wait out.
		nats.RetryOnFailedConnect(false),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.ReconnectBufSize(reconnectBufSize),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			// A nil error is the program's own Close, not worth a line.
			if err != nil {
				logger.Warn("disconnected from NATS; reconnecting", "url", shown, "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("reconnected to NATS", "url", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				logger.Error("NATS async error", "subject", sub.Subject, "err", err)
				return
			}
			logger.Error("NATS async error", "err", err)
		}),
		nats.ClosedHandler(func(c *nats.Conn) {
			// A close without an error is the program's own Close/Drain, not worth a line.
			if err := c.LastError(); err != nil {
				logger.Error("NATS connection closed", "err", err)
			}
		}),
	)...)
	if err != nil {
		return nil, explain(shown, auth, err)
	}
	return nc, nil
}
