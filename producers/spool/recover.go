package spool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
)

// recover finds the undelivered entries after a Close or a crash: it removes
// segments behind the cursor, checks every record from the cursor on, cuts a
// torn tail off the last segment and opens that segment for appending.
func (s *Spool) recover() error {
	cursor, err := readCursor(s.dir)
	if err != nil {
		return fmt.Errorf("spool %s: %w", s.dir, err)
	}
	if s.link.setAside, err = countRejected(s.dir); err != nil {
		return fmt.Errorf("spool %s: %w", s.dir, err)
	}
	s.link.state = LinkUnknown
	segs, err := s.liveSegments(cursor)
	if err != nil {
		return fmt.Errorf("spool %s: %w", s.dir, err)
	}
	if len(segs) == 0 {
		return s.startEmpty(max(cursor.seg, 1))
	}
	if cursor.seg < segs[0] {
		cursor = position{seg: segs[0]}
	}
	s.cursor = cursor
	var total int64
	for i, seg := range segs {
		end, waiting, err := s.checkSegment(seg, cursor, i == len(segs)-1)
		if err != nil {
			return fmt.Errorf("spool %s: %w", s.dir, err)
		}
		total += end
		s.waiting += waiting
		s.wEnd = position{seg: seg, off: end}
	}
	s.used = total - cursor.off
	s.durable = s.wEnd
	if s.w, err = os.OpenFile(segmentPath(s.dir, s.wEnd.seg), os.O_WRONLY|os.O_APPEND, 0); err != nil {
		return fmt.Errorf("spool %s: %w", s.dir, err)
	}
	if s.used > 0 {
		s.logger.Info("spool holds undelivered events", "bytes", s.used, "from", cursor)
	}
	return nil
}

// liveSegments removes the segments that lie wholly behind cursor, which a
// crash may have left, and returns the others.
func (s *Spool) liveSegments(cursor position) ([]uint64, error) {
	segs, err := segments(s.dir)
	if err != nil {
		return nil, err
	}
	live := segs[:0]
	for _, seg := range segs {
		if seg >= cursor.seg {
			live = append(live, seg)
			continue
		}
		if err := os.Remove(segmentPath(s.dir, seg)); err != nil {
			return nil, err
		}
	}
	return live, nil
}

func (s *Spool) startEmpty(seg uint64) error {
	w, err := createSegment(s.dir, seg)
	if err != nil {
		return fmt.Errorf("spool %s: %w", s.dir, err)
	}
	s.w = w
	s.wEnd = position{seg: seg}
	s.durable = s.wEnd
	s.cursor = s.wEnd
	return nil
}

// checkSegment reads every record of seg and returns where the last good one
// ends and how many records lie after the cursor. A bad record in the last segment is a write torn by a crash and is cut
// off with what follows it; anywhere else it is damage that needs a person,
// since cutting there would lose events that were acknowledged to a caller.
func (s *Spool) checkSegment(seg uint64, cursor position, last bool) (int64, int, error) {
	path := segmentPath(s.dir, seg)
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var mark int64
	if cursor.seg == seg {
		mark = cursor.off
	}
	end, boundary, after, scanErr := scan(f, mark)
	if !boundary {
		return 0, 0, fmt.Errorf("cursor %s is not at a record of %s", cursor, path)
	}
	if scanErr == nil {
		return end, after, nil
	}
	if !errors.Is(scanErr, errTorn) || !last {
		return 0, 0, fmt.Errorf("%s at offset %d: %w", path, end, scanErr)
	}
	return end, after, s.truncate(path, end, scanErr)
}

// scan reads records from r until the end or the first bad one, returning the
// end of the last good record, whether mark is the start or end of a record,
// and how many good records start at or after mark.
func scan(r io.Reader, mark int64) (end int64, boundary bool, after int, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	boundary = mark == 0
	for {
		payload, err := readRecord(br)
		if err == io.EOF {
			return end, boundary, after, nil
		}
		if err != nil {
			return end, boundary, after, err
		}
		if end >= mark {
			after++
		}
		end += headerBytes + int64(len(payload))
		boundary = boundary || end == mark
	}
}

func (s *Spool) truncate(path string, end int64, cause error) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if err := f.Truncate(end); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	s.logger.Warn("cut a torn record off the spool, left by a crash during a write",
		"file", path, "offset", end, "bytes_dropped", info.Size()-end, "cause", cause)
	return nil
}
