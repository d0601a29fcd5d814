package embeddedbroker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/ikd-pipeline/ikd/internal/broker"
)

// operatorBroker runs nats-server in operator (JWT) mode, where users come
// as .creds files, and returns its URL and the account's signing key.
func operatorBroker(t *testing.T) (string, nkeys.KeyPair) {
	t.Helper()
	operator, _ := nkeys.CreateOperator()
	opub, _ := operator.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	if _, err := oc.Encode(operator); err != nil {
		t.Fatal(err)
	}
	account, _ := nkeys.CreateAccount()
	apub, _ := account.PublicKey()
	ac := jwt.NewAccountClaims(apub)
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{DiskStorage: -1, MemoryStorage: -1}
	ajwt, err := ac.Encode(operator)
	if err != nil {
		t.Fatal(err)
	}
	// JetStream in operator mode needs a system account.
	system, _ := nkeys.CreateAccount()
	spub, _ := system.PublicKey()
	sjwt, err := jwt.NewAccountClaims(spub).Encode(operator)
	if err != nil {
		t.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	for pub, claims := range map[string]string{apub: ajwt, spub: sjwt} {
		if err := resolver.Store(pub, claims); err != nil {
			t.Fatal(err)
		}
	}
	opts := &server.Options{
		ServerName: serverName, Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		TrustedOperators: []*jwt.OperatorClaims{oc}, AccountResolver: resolver, SystemAccount: spub, NoSigs: true, NoLog: true,
	}
	b, err := startServer(opts, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	return b.URL(), account
}

// credsFile writes a .creds file of a counter user signed by account.
func credsFile(t *testing.T, account nkeys.KeyPair) string {
	t.Helper()
	user, _ := nkeys.CreateUser()
	upub, _ := user.PublicKey()
	uc := jwt.NewUserClaims(upub)
	uc.Pub.Allow.Add("ikd.v1.>")
	uc.Sub.Allow.Add("_INBOX.counter.>")
	ujwt, err := uc.Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	creds, err := jwt.FormatUserConfig(ujwt, seed)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "counter.creds")
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestACredsFileConnectsToABrokerOfItsOperatorOnly(t *testing.T) {
	url, account := operatorBroker(t)
	auth := broker.Auth{Creds: credsFile(t, account), InboxPrefix: "_INBOX.counter"}
	nc, err := broker.Connect(url, "test", auth, testLogger(t))
	if err != nil {
		t.Fatalf("connect with the .creds file: %v", err)
	}
	nc.Close()

	_, strangers := operatorBroker(t)
	_, err = broker.Connect(url, "test", broker.Auth{Creds: credsFile(t, strangers)}, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "IKD_NATS_CREDS") {
		t.Fatalf("connect with another operator's user: %v, want a refusal naming IKD_NATS_CREDS", err)
	}
}
