// Package private keeps a program's data directory to its user: it holds the
// pseudonym key, credentials and events, which are no one else's to read.
package private

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// others are the permission bits of the group and of everyone else.
const others fs.FileMode = 0o077

// Umask makes every file and directory the process creates from now on
// private to its user, also those that libraries create with their own modes
// (the ClickHouse engine, nats-server). It is process-wide: mains call it
// first thing.
func Umask() { syscall.Umask(int(others)) }

// Dir creates dir with mode 0700 when it is missing and takes the group's and
// others' permissions from it and from everything under it, so that a
// directory made by an earlier version, or copied in, is private too.
// Symbolic links are left alone, and so is what they point to.
func Dir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		var info fs.FileInfo
		if err == nil {
			info, err = d.Info()
		}
		if err == nil && info.Mode().Perm()&others != 0 {
			err = os.Chmod(path, info.Mode().Perm()&^others)
		}
		// A file that a running program (a spool's cursor.tmp, the broker's
		// or the engine's) removed during the walk has nothing left to hide.
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("make data directory %s private: %w", dir, err)
	}
	return nil
}

// Shared lists what under dir its group or others may still use, for tests
// and checks; nil when everything is private.
func Shared(dir string) ([]string, error) {
	var shared []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&others != 0 {
			shared = append(shared, fmt.Sprintf("%s (%v)", path, info.Mode().Perm()))
		}
		return nil
	})
	return shared, err
}
