package embeddedbroker

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ikd-pipeline/ikd/internal/broker"
)

// Credentials are the passwords of an embedded broker's users, one user per
// role, named after it.
type Credentials map[broker.Role]string

const credentialsFile = "users.json"

// NewCredentials makes a random password for every role.
func NewCredentials() (Credentials, error) {
	c := Credentials{}
	for _, role := range broker.Roles {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("broker credentials: %w", err)
		}
		c[role] = base64.RawURLEncoding.EncodeToString(b)
	}
	return c, nil
}

// LoadOrCreateCredentials reads the credentials kept in dir, or makes them
// at the first start and keeps them there, private to the user (file 0600,
// dir 0700).
func LoadOrCreateCredentials(dir string) (Credentials, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("broker credentials: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("broker credentials: %w", err)
	}
	path := filepath.Join(dir, credentialsFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		var c Credentials
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, fmt.Errorf("broker credentials %s: %w; delete it to make new ones", path, err)
		}
		for _, role := range broker.Roles {
			if c[role] == "" {
				return nil, fmt.Errorf("broker credentials %s: no password for %s; delete the file to make new ones", path, role)
			}
		}
		return c, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("broker credentials: %w", err)
	}
	c, err := NewCredentials()
	if err != nil {
		return nil, err
	}
	data, err = json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("broker credentials: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("broker credentials: %w", err)
	}
	return c, nil
}

// Users are the broker users of c, for Config.Users.
func (c Credentials) Users() []User {
	users := make([]User, 0, len(c))
	for _, role := range broker.Roles {
		if pw, ok := c[role]; ok {
			users = append(users, User{Name: string(role), Password: pw, Role: role})
		}
	}
	return users
}

// Auth is how a program connects as role.
func (c Credentials) Auth(role broker.Role) broker.Auth {
	return broker.Auth{User: string(role), Password: c[role]}
}

// WriteEnvFiles writes dir/<role>.env for each role (mode 0600), to be
// sourced by a shell: NATS_* for the nats CLI, IKD_NATS_* for the programs.
func (c Credentials) WriteEnvFiles(dir, url string) error {
	for _, role := range broker.Roles {
		var b strings.Builder
		fmt.Fprintf(&b, "# Broker credentials of the %s role, written by ikd-dev.\n# Use: . %s && nats stream ls\n", role, EnvFile(dir, role))
		for _, prefix := range []string{"NATS", "IKD_NATS"} {
			fmt.Fprintf(&b, "export %s_URL=%s\nexport %s_USER=%s\nexport %s_PASSWORD=%s\n", prefix, url, prefix, role, prefix, c[role])
		}
		path := EnvFile(dir, role)
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			return fmt.Errorf("broker credentials: %w", err)
		}
		// WriteFile keeps the mode of a file that was already there.
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("broker credentials: %w", err)
		}
	}
	return nil
}

// EnvFile is where WriteEnvFiles puts role's variables.
func EnvFile(dir string, role broker.Role) string {
	return filepath.Join(dir, string(role)+".env")
}
