package embeddedbroker_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// authority is a certificate authority made for one test.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // its certificate, PEM
}

func newAuthority(t *testing.T, name string) *authority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), name+".pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &authority{cert: cert, key: key, file: file}
}

// serverTLS is a TLS configuration for a broker on 127.0.0.1, its
// certificate signed by a.
func (a *authority) serverTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "ikd-broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

func TestTLSConnectionTrustsTheGivenCAAndRefusesAnother(t *testing.T) {
	ca := newAuthority(t, "ikd-test-ca")
	cfg := testenv.BrokerConfig(t.TempDir(), -1)
	cfg.TLS = ca.serverTLS(t)
	url := testenv.StartBroker(t, cfg).URL()
	if !strings.HasPrefix(url, "tls://") {
		t.Fatalf("URL %s, want tls://", url)
	}

	auth := testenv.Auth(broker.RoleAdmin)
	auth.CA = ca.file
	nc, err := broker.Connect(url, "test", auth, testenv.Quiet)
	if err != nil {
		t.Fatalf("connect with the broker's CA: %v", err)
	}
	if !nc.TLSRequired() {
		t.Error("the connection is not TLS")
	}
	nc.Close()

	auth.CA = newAuthority(t, "another-ca").file
	_, err = broker.Connect(url, "test", auth, testenv.Quiet)
	if err == nil {
		t.Fatal("connected trusting another CA")
	}
	for _, want := range []string{"TLS", "IKD_NATS_CA", "unknown authority"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestACAFileWithoutACertificateIsRefusedAtStart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := broker.Connect("tls://127.0.0.1:1", "test", broker.Auth{CA: file}, testenv.Quiet)
	if err == nil || !strings.Contains(err.Error(), "IKD_NATS_CA") {
		t.Fatalf("bad CA file: %v, want an error naming IKD_NATS_CA", err)
	}
}
