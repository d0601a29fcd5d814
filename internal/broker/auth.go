package broker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// Auth is how a program proves who it is to the broker, the ways NATS knows:
// a user and password, an nkey seed file, or a .creds file (JWT and seed),
// and a CA to trust for tls:// URLs. Programs embed it as `envconfig:"NATS"`,
// which gives IKD_NATS_USER, IKD_NATS_PASSWORD, ...
type Auth struct {
	User     string `envconfig:"USER"`
	Password string `envconfig:"PASSWORD" secret:"true"`
	NKeyFile string `envconfig:"NKEY_FILE"`
	Creds    string `envconfig:"CREDS"`
	CA       string `envconfig:"CA"`
	// InboxPrefix is where replies to this program arrive; the broker lets
	// each role read only its own, so that no program can read another's
	// replies (which carry the events a consumer fetches). Unset, it is
	// _INBOX.<user> with a user, else _INBOX.
	InboxPrefix string `envconfig:"INBOX_PREFIX"`
}

// Validate refuses credentials that contradict each other or files that
// cannot be read, naming the variable.
func (a Auth) Validate() error {
	n := 0
	for _, set := range []bool{a.User != "", a.NKeyFile != "", a.Creds != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errors.New("IKD_NATS_USER, IKD_NATS_NKEY_FILE and IKD_NATS_CREDS are alternatives; set one")
	}
	if a.Password != "" && a.User == "" {
		return errors.New("IKD_NATS_PASSWORD is set without IKD_NATS_USER")
	}
	for _, f := range []struct{ name, path string }{{"IKD_NATS_NKEY_FILE", a.NKeyFile}, {"IKD_NATS_CREDS", a.Creds}, {"IKD_NATS_CA", a.CA}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return nil
}

// inboxPrefix is the reply subject prefix this program's permissions allow.
func (a Auth) inboxPrefix() string {
	switch {
	case a.InboxPrefix != "":
		return a.InboxPrefix
	case a.User != "":
		return InboxPrefix(a.User)
	default:
		return nats.InboxPrefix[:len(nats.InboxPrefix)-1]
	}
}

// InboxPrefix is the reply subject prefix of the role (or user) name: the
// only inbox its permissions let it read.
func InboxPrefix(name string) string { return "_INBOX." + name }

// Options turns a into nats.go options, for a client that dials NATS
// itself; Connect uses them.
func (a Auth) Options() ([]nats.Option, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	opts := []nats.Option{nats.CustomInboxPrefix(a.inboxPrefix())}
	switch {
	case a.User != "":
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	case a.NKeyFile != "":
		opt, err := nats.NkeyOptionFromSeed(a.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("IKD_NATS_NKEY_FILE: %w", err)
		}
		opts = append(opts, opt)
	case a.Creds != "":
		opts = append(opts, nats.UserCredentials(a.Creds))
	}
	if a.CA != "" {
		tlsOpt, err := caOption(a.CA)
		if err != nil {
			return nil, err
		}
		opts = append(opts, tlsOpt)
	}
	return opts, nil
}

// caOption trusts only the CA in path, read now so that a bad file is an
// error at start rather than at the first handshake.
func caOption(path string) (nats.Option, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("IKD_NATS_CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("IKD_NATS_CA: %s holds no PEM certificate", path)
	}
	return nats.Secure(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}), nil
}

// explain adds what a person can do about a refused connection.
func explain(url string, a Auth, err error) error {
	switch {
	case errors.Is(err, nats.ErrAuthorization), strings.Contains(strings.ToLower(err.Error()), "authorization violation"):
		who := "no credentials"
		switch {
		case a.User != "":
			who = "user " + a.User
		case a.NKeyFile != "":
			who = "the nkey in " + a.NKeyFile
		case a.Creds != "":
			who = "the credentials in " + a.Creds
		}
		return fmt.Errorf("connect to NATS at %s: the broker refused %s: %w; set IKD_NATS_USER and IKD_NATS_PASSWORD (ikd-dev writes them to its data directory, nats/credentials/<role>.env), IKD_NATS_NKEY_FILE or IKD_NATS_CREDS", url, who, err)
	case isTLSError(err):
		return fmt.Errorf("connect to NATS at %s: TLS: %w; IKD_NATS_CA must name the CA that signed the broker's certificate", url, err)
	}
	return fmt.Errorf("connect to NATS at %s: %w; start bin/ikd-dev or set IKD_NATS_URL", url, err)
}

func isTLSError(err error) bool {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	return errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify) ||
		errors.Is(err, nats.ErrSecureConnRequired) || errors.Is(err, nats.ErrSecureConnWanted)
}
