// Package engine runs the ClickHouse engine in-process: it loads chDB's
// libchdb.so (without cgo) and executes SQL against a data directory.
//
// chDB 26.5 keeps one engine per process, reached through one connection that
// runs one statement at a time, so an Engine serializes its callers and a
// process can hold only one open Engine.
package engine

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/ikd-pipeline/ikd/internal/dirlock"
)

// Error is an exception raised by the engine, with ClickHouse's error code.
type Error struct {
	Code    int
	Message string // the full text, "Code: 60. DB::Exception: ..."
}

func (e *Error) Error() string { return e.Message }

var codeRe = regexp.MustCompile(`Code:\s*(\d+)\.`)

func newError(msg string) *Error {
	msg = strings.TrimSpace(msg)
	e := &Error{Code: 1001, Message: msg} // 1001: STD_EXCEPTION, for text without a code
	if m := codeRe.FindStringSubmatch(msg); m != nil {
		e.Code, _ = strconv.Atoi(m[1])
		e.Message = msg[strings.Index(msg, m[0]):]
	} else {
		e.Message = fmt.Sprintf("Code: %d. DB::Exception: %s", e.Code, msg)
	}
	return e
}

// Request is one statement with what ClickHouse's interfaces attach to it.
type Request struct {
	SQL      string
	Format   string            // output format; "" means TabSeparated
	Database string            // current database for the statement; "" means default
	Params   map[string]string // values for {name:Type} placeholders
	Settings map[string]string // per-statement settings
}

// Result is the statement's output in the requested format.
type Result struct {
	Data         []byte
	RowsRead     uint64
	BytesRead    uint64
	RowsWritten  uint64
	BytesWritten uint64
	Elapsed      float64 // seconds
}

type lib struct {
	setSignalHandlers func(int32)
	connect           func(int32, **byte) unsafe.Pointer
	closeConn         func(unsafe.Pointer)
	queryWithParams   func(conn unsafe.Pointer, q *byte, qlen uintptr, f *byte, flen uintptr, names **byte, nameLens *uintptr, values **byte, valueLens *uintptr, n uintptr) unsafe.Pointer
	resultError       func(unsafe.Pointer) *byte
	resultBuffer      func(unsafe.Pointer) *byte
	resultLength      func(unsafe.Pointer) uintptr
	rowsRead          func(unsafe.Pointer) uint64
	bytesRead         func(unsafe.Pointer) uint64
	rowsWritten       func(unsafe.Pointer) uint64
	bytesWritten      func(unsafe.Pointer) uint64
	elapsed           func(unsafe.Pointer) float64
	destroyResult     func(unsafe.Pointer)
}

// The library can be mapped into a process once, and the engine inside it
// opened once at a time; this state mirrors that process-wide fact.
var process struct {
	sync.Mutex
	lib     *lib
	libPath string
	open    bool
}

func load(path string) (*lib, error) {
	if process.lib != nil {
		if process.libPath != path {
			return nil, fmt.Errorf("engine library already loaded from %s", process.libPath)
		}
		return process.lib, nil
	}
	if err := VerifyLibrary(path); err != nil {
		return nil, err
	}
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("%w: load %s: %v; %s", ErrLibrary, path, err, fetchHint)
	}
	l := &lib{}
	for name, fn := range map[string]any{
		"chdb_set_signal_handlers_enabled": &l.setSignalHandlers,
		"chdb_connect":                     &l.connect,
		"chdb_close_conn":                  &l.closeConn,
		"chdb_query_with_params_n":         &l.queryWithParams,
		"chdb_result_error":                &l.resultError,
		"chdb_result_buffer":               &l.resultBuffer,
		"chdb_result_length":               &l.resultLength,
		"chdb_result_rows_read":            &l.rowsRead,
		"chdb_result_bytes_read":           &l.bytesRead,
		"chdb_result_rows_written":         &l.rowsWritten,
		"chdb_result_bytes_written":        &l.bytesWritten,
		"chdb_result_elapsed":              &l.elapsed,
		"chdb_destroy_query_result":        &l.destroyResult,
	} {
		sym, err := purego.Dlsym(h, name)
		if err != nil {
			return nil, fmt.Errorf("%w: %s lacks %s: %v; %s", ErrLibrary, path, name, err, fetchHint)
		}
		purego.RegisterFunc(fn, sym)
	}
	process.lib, process.libPath = l, path
	return l, nil
}

// Engine is an open ClickHouse engine over one data directory.
type Engine struct {
	mu      sync.Mutex
	lib     *lib
	conn    unsafe.Pointer // chdb_connection*, for close
	handle  unsafe.Pointer // *conn, the chdb_connection queries take
	dir     string
	version string
	db      string // the connection's current database
	lock    *dirlock.Lock
}

// Open starts the engine on dir, creating it if needed. libPath names
// libchdb.so; "" means DefaultLibraryPath.
func Open(dir, libPath string) (*Engine, error) {
	if libPath == "" {
		libPath = DefaultLibraryPath()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("engine data directory %q: %w", dir, err)
	}
	process.Lock()
	defer process.Unlock()
	if process.open {
		return nil, errors.New("engine already open in this process (chDB allows one engine per process)")
	}
	l, err := load(libPath)
	if err != nil {
		return nil, err
	}
	lock, err := dirlock.Acquire(abs)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	// The Go runtime owns signals; chDB's handlers would swallow SIGSEGV-based
	// nil checks and Ctrl-C.
	l.setSignalHandlers(0)
	args := []string{"clickhouse", "--path=" + abs}
	argv, pin := cStrings(args)
	conn := l.connect(int32(len(args)), argv)
	pin.Unpin()
	if conn == nil {
		lock.Release()
		return nil, fmt.Errorf("engine: open %s failed", abs)
	}
	e := &Engine{lib: l, conn: conn, handle: *(*unsafe.Pointer)(conn), dir: abs, db: "default", lock: lock}
	res, err := e.Query(Request{SQL: "SELECT version()"})
	if err != nil {
		l.closeConn(conn)
		lock.Release()
		return nil, fmt.Errorf("engine: first query: %w", err)
	}
	e.version = strings.TrimSpace(string(res.Data))
	process.open = true
	return e, nil
}

// Version is the ClickHouse version of the engine.
func (e *Engine) Version() string { return e.version }

// Dir is the engine's data directory.
func (e *Engine) Dir() string { return e.dir }

// Close stops the engine; data stays in its directory.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn == nil {
		return nil
	}
	e.lib.closeConn(e.conn)
	e.conn = nil
	_ = e.lock.Release()
	process.Lock()
	process.open = false
	process.Unlock()
	return nil
}

// Query runs one statement. Settings and database apply to this statement
// only: the shared connection is put back as it was afterwards.
func (e *Engine) Query(req Request) (Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn == nil {
		return Result{}, errors.New("engine is closed")
	}
	db := req.Database
	if db == "" {
		db = "default"
	}
	if db != e.db {
		if _, err := e.run("USE "+quoteIdent(db), "", nil); err != nil {
			return Result{}, err
		}
		e.db = db
	}
	if len(req.Settings) > 0 {
		restore, err := e.applySettings(req.Settings)
		if err != nil {
			return Result{}, err
		}
		defer func() { _, _ = e.run(restore, "", nil) }()
	}
	format := req.Format
	if format == "" {
		format = "TabSeparated"
	}
	return e.run(req.SQL, format, req.Params)
}

// applySettings sets each setting on the connection and returns the SET
// statement that puts the previous values back.
func (e *Engine) applySettings(settings map[string]string) (restore string, err error) {
	names := make([]string, 0, len(settings))
	for name := range settings {
		names = append(names, name)
	}
	sort.Strings(names)
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = quoteString(n)
	}
	res, err := e.run("SELECT name, value FROM system.settings WHERE name IN ("+strings.Join(quoted, ",")+")", "TabSeparatedRaw", nil)
	if err != nil {
		return "", err
	}
	previous := map[string]string{}
	for _, line := range strings.Split(strings.TrimRight(string(res.Data), "\n"), "\n") {
		if name, value, ok := strings.Cut(line, "\t"); ok {
			previous[name] = value
		}
	}
	set := make([]string, 0, len(names))
	back := make([]string, 0, len(names))
	for _, n := range names {
		old, known := previous[n]
		if !known {
			return "", newError(fmt.Sprintf("Code: 115. DB::Exception: Unknown setting '%s'. (UNKNOWN_SETTING)", n))
		}
		set = append(set, quoteIdent(n)+" = "+quoteString(settings[n]))
		back = append(back, quoteIdent(n)+" = "+quoteString(old))
	}
	if _, err := e.run("SET "+strings.Join(set, ", "), "", nil); err != nil {
		return "", err
	}
	return "SET " + strings.Join(back, ", "), nil
}

func (e *Engine) run(sql, format string, params map[string]string) (Result, error) {
	if format == "" {
		format = "TabSeparated"
	}
	names := make([]string, 0, len(params))
	values := make([]string, 0, len(params))
	for k, v := range params {
		names = append(names, k)
		values = append(values, v)
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	q, qlen := bytesOf(sql, &pin)
	f, flen := bytesOf(format, &pin)
	namePtrs, nameLens := arrays(names, &pin)
	valuePtrs, valueLens := arrays(values, &pin)
	res := e.lib.queryWithParams(e.handle, q, qlen, f, flen, namePtrs, nameLens, valuePtrs, valueLens, uintptr(len(names)))
	if res == nil {
		return Result{}, newError("engine returned no result")
	}
	defer e.lib.destroyResult(res)
	if msg := e.lib.resultError(res); msg != nil {
		return Result{}, newError(goString(msg))
	}
	out := Result{
		RowsRead:     e.lib.rowsRead(res),
		BytesRead:    e.lib.bytesRead(res),
		RowsWritten:  e.lib.rowsWritten(res),
		BytesWritten: e.lib.bytesWritten(res),
		Elapsed:      e.lib.elapsed(res),
	}
	if n := e.lib.resultLength(res); n > 0 {
		out.Data = append([]byte(nil), unsafe.Slice(e.lib.resultBuffer(res), n)...)
	}
	return out, nil
}

func bytesOf(s string, pin *runtime.Pinner) (*byte, uintptr) {
	b := append([]byte(s), 0) // NUL-terminated as well, for safety
	pin.Pin(&b[0])
	return &b[0], uintptr(len(s))
}

func arrays(ss []string, pin *runtime.Pinner) (**byte, *uintptr) {
	if len(ss) == 0 {
		return nil, nil
	}
	ptrs := make([]*byte, len(ss))
	lens := make([]uintptr, len(ss))
	for i, s := range ss {
		ptrs[i], lens[i] = bytesOf(s, pin)
	}
	pin.Pin(&ptrs[0])
	pin.Pin(&lens[0])
	return &ptrs[0], &lens[0]
}

func cStrings(ss []string) (**byte, *runtime.Pinner) {
	pin := &runtime.Pinner{}
	ptrs := make([]*byte, len(ss)+1)
	for i, s := range ss {
		ptrs[i], _ = bytesOf(s, pin)
	}
	pin.Pin(&ptrs[0])
	return &ptrs[0], pin
}

func goString(p *byte) string {
	var n int
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "\\`") + "`" }

func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
