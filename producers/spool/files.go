package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	segmentSuffix = ".seg"
	cursorName    = "cursor"
)

// position is a place in the spool: a segment number and a byte offset in it.
// Segments are numbered from 1 without gaps, and the end of one segment is
// the same place as the start of the next.
type position struct {
	seg uint64
	off int64
}

func (p position) before(q position) bool {
	return p.seg < q.seg || p.seg == q.seg && p.off < q.off
}

func (p position) String() string { return fmt.Sprintf("segment %d offset %d", p.seg, p.off) }

func segmentPath(dir string, seg uint64) string {
	// Zero padding makes the names sort in segment order.
	return filepath.Join(dir, fmt.Sprintf("%020d%s", seg, segmentSuffix))
}

// segments lists the segment numbers in dir, in order.
func segments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), segmentSuffix)
		if !ok {
			continue
		}
		seg, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("unexpected file %s", e.Name())
		}
		segs = append(segs, seg)
	}
	slices.Sort(segs)
	return segs, nil
}

// readCursor returns the saved cursor, or the zero position when none was
// saved yet.
func readCursor(dir string) (position, error) {
	data, err := os.ReadFile(filepath.Join(dir, cursorName))
	if errors.Is(err, fs.ErrNotExist) {
		return position{}, nil
	}
	if err != nil {
		return position{}, err
	}
	var p position
	if _, err := fmt.Sscanf(string(data), "%d %d\n", &p.seg, &p.off); err != nil || p.off < 0 {
		return position{}, fmt.Errorf("cursor file holds %q, want two numbers", data)
	}
	return p, nil
}

// writeCursor saves p so that it replaces the old cursor whole or not at all:
// written aside, fsynced, renamed over, and the rename fsynced.
func writeCursor(dir string, p position) error {
	tmp := filepath.Join(dir, cursorName+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%d %d\n", p.seg, p.off)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write cursor: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, cursorName)); err != nil {
		return fmt.Errorf("write cursor: %w", err)
	}
	return syncDir(dir)
}

// syncDir makes creations, renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// createSegment creates segment seg, empty, and opens it for appending.
func createSegment(dir string, seg uint64) (*os.File, error) {
	f, err := os.OpenFile(segmentPath(dir, seg), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// rotate closes the last segment, fsynced, and starts the next; mu is held
// and no sync is running.
func (s *Spool) rotate() error {
	if err := s.w.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", s.w.Name(), err)
	}
	if err := s.w.Close(); err != nil {
		return fmt.Errorf("close %s: %w", s.w.Name(), err)
	}
	next := s.wEnd.seg + 1
	w, err := createSegment(s.dir, next)
	if err != nil {
		return fmt.Errorf("new segment: %w", err)
	}
	s.w = w
	s.wEnd = position{seg: next}
	s.durable = s.wEnd
	s.wake()
	return nil
}
