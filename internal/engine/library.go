package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The engine library is pinned: the Makefile fetches exactly this package and
// the programs refuse any other file, so every machine runs the same engine.
const (
	// Package is the npm package that ships libchdb.so.
	Package = "@chdb/lib-linux-x64-gnu"
	// Version is the pinned version of Package.
	Version = "26.5.3"
	// LibrarySHA256 is the SHA-256 of package/libchdb.so inside that version's tarball.
	LibrarySHA256 = "4330da79405733f7572f27c1442f46c03a08301f00859dce0368645731b1e1dc"
)

// ErrLibrary marks every failure to find or trust the engine library; its
// message always says how to fetch the right one.
var ErrLibrary = errors.New("ClickHouse engine library (chDB) unusable")

const fetchHint = "run `make deps` to fetch it, or set IKD_CHDB_LIB to its path"

// DefaultLibraryPath is where `make deps` puts the library: a cache outside the
// repository, shared by every clone on the machine.
func DefaultLibraryPath() string {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "ikd", "chdb", Version, "libchdb.so")
}

// VerifyLibrary checks that path holds the pinned engine library. Hashing
// 559 MB takes about a second, so a verified file is remembered in a stamp
// beside it, keyed by size and modification time; any change re-hashes.
func VerifyLibrary(path string) error {
	info, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s not found; %s", ErrLibrary, path, fetchHint)
	}
	if err != nil {
		return fmt.Errorf("%w: %v; %s", ErrLibrary, err, fetchHint)
	}
	stampPath := path + ".verified"
	stamp := strconv.FormatInt(info.Size(), 10) + " " + strconv.FormatInt(info.ModTime().UnixNano(), 10) + " " + LibrarySHA256
	if old, err := os.ReadFile(stampPath); err == nil && strings.TrimSpace(string(old)) == stamp {
		return nil
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return fmt.Errorf("%w: hash %s: %v; %s", ErrLibrary, path, err, fetchHint)
	}
	if sum != LibrarySHA256 {
		return fmt.Errorf("%w: %s has SHA-256 %s, want %s (%s %s); %s",
			ErrLibrary, path, sum, LibrarySHA256, Package, Version, fetchHint)
	}
	// A stamp that cannot be written only costs the next start a re-hash.
	_ = os.WriteFile(stampPath, []byte(stamp+"\n"), 0o644)
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
