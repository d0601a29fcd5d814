// Package engine runs the ClickHouse engine in-process: it loads chDB's
// libchdb.so (without cgo) and executes SQL against a data directory.
//
// chDB 26.5 keeps one engine per process, so a process can hold only one
// open Engine; each connection to it is a ClickHouse session of its own, and
// connections run their statements concurrently.
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
//
// Every chdb_connect on the open engine is its own ClickHouse session (its
// own settings, current database and temporary tables), and statements on
// different connections run concurrently; so each caller gets a connection
// of its own rather than sharing one.
type Engine struct {
	mu      sync.RWMutex // held for reading while a connection is in use
	lib     *lib
	base    unsafe.Pointer // chdb_connection*: keeps the engine up while others come and go
	dir     string
	version string
	lock    *dirlock.Lock
	closed  bool
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
	e := &Engine{lib: l, dir: abs, lock: lock}
	e.base = e.connect()
	if e.base == nil {
		lock.Release()
		return nil, fmt.Errorf("engine: open %s failed", abs)
	}
	res, err := e.Query(Request{SQL: "SELECT version()"})
	if err != nil {
		l.closeConn(e.base)
		lock.Release()
		return nil, fmt.Errorf("engine: first query: %w", err)
	}
	e.version = strings.TrimSpace(string(res.Data))
	process.open = true
	return e, nil
}

// connect opens one more session on the engine; nil when the engine refuses.
func (e *Engine) connect() unsafe.Pointer {
	args := []string{"clickhouse", "--path=" + e.dir}
	argv, pin := cStrings(args)
	defer pin.Unpin()
	return e.lib.connect(int32(len(args)), argv)
}

// Version is the ClickHouse version of the engine.
func (e *Engine) Version() string { return e.version }

// Dir is the engine's data directory.
func (e *Engine) Dir() string { return e.dir }

// Close stops the engine once the connections in use are put down; data
// stays in its directory.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	e.lib.closeConn(e.base)
	_ = e.lock.Release()
	process.Lock()
	process.open = false
	process.Unlock()
	return nil
}

// Query runs one statement in a session of its own, opened for it and
// closed after it: nothing it sets or creates outlives it, and nothing
// another caller set reaches it.
func (e *Engine) Query(req Request) (Result, error) {
	c, err := e.Connect()
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	if err := c.use(req.Database); err != nil {
		return Result{}, err
	}
	if len(req.Settings) > 0 {
		// Nothing to put back in a session of its own; SET itself refuses
		// an unknown setting.
		if _, err := c.run(setStatement(req.Settings), "", nil); err != nil {
			return Result{}, err
		}
	}
	return c.run(req.SQL, req.Format, req.Params)
}

// Conn is one session on the engine: what SET, USE and CREATE TEMPORARY
// TABLE do on it stays on it. Its statements run one at a time; statements
// of different Conns run concurrently.
type Conn struct {
	e      *Engine
	mu     sync.Mutex
	conn   unsafe.Pointer // chdb_connection*, for close
	handle unsafe.Pointer // *conn, the chdb_connection queries take
	broken bool
}

// Connect opens a new session; Close it when done.
func (e *Engine) Connect() (*Conn, error) {
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return nil, errors.New("engine is closed")
	}
	conn := e.connect()
	if conn == nil {
		e.mu.RUnlock()
		return nil, errors.New("engine: cannot open a session")
	}
	return &Conn{e: e, conn: conn, handle: *(*unsafe.Pointer)(conn)}, nil
}

// Close ends the session and everything it holds (temporary tables).
func (c *Conn) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return
	}
	c.e.lib.closeConn(c.conn)
	c.conn = nil
	c.e.mu.RUnlock()
}

// Broken reports that the session could not be put back as it was after a
// statement with its own settings or database; it must not be used again.
func (c *Conn) Broken() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken
}

// Query runs one statement in the session. Settings and Database apply to
// this statement only: the session is put back as it was afterwards, and
// marked Broken if that fails.
func (c *Conn) Query(req Request) (Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil || c.broken {
		return Result{}, errors.New("engine session is closed")
	}
	restore, err := c.snapshot(req)
	if err != nil {
		return Result{}, err
	}
	if req.Database != "" {
		if err := c.use(req.Database); err != nil {
			return Result{}, err
		}
	}
	if len(req.Settings) > 0 {
		if _, err := c.applySettings(req.Settings); err != nil {
			c.putBack(restore)
			return Result{}, err
		}
	}
	res, err := c.run(req.SQL, req.Format, req.Params)
	c.putBack(restore)
	return res, err
}

// snapshot returns the statements that put back what req changes for its
// own sake: the current database and the settings it names.
func (c *Conn) snapshot(req Request) ([]string, error) {
	if req.Database == "" && len(req.Settings) == 0 {
		return nil, nil
	}
	var restore []string
	if req.Database != "" {
		res, err := c.run("SELECT currentDatabase()", "TabSeparatedRaw", nil)
		if err != nil {
			return nil, err
		}
		restore = append(restore, "USE "+quoteIdent(strings.TrimSpace(string(res.Data))))
	}
	if len(req.Settings) > 0 {
		previous, err := c.currentSettings(req.Settings)
		if err != nil {
			return nil, err
		}
		back := make([]string, 0, len(previous))
		for _, n := range sortedKeys(previous) {
			back = append(back, quoteIdent(n)+" = "+quoteString(previous[n]))
		}
		restore = append(restore, "SET "+strings.Join(back, ", "))
	}
	return restore, nil
}

func (c *Conn) putBack(restore []string) {
	for _, stmt := range restore {
		if _, err := c.run(stmt, "", nil); err != nil {
			c.broken = true
			return
		}
	}
}

func (c *Conn) use(db string) error {
	if db == "" {
		return nil
	}
	_, err := c.run("USE "+quoteIdent(db), "", nil)
	return err
}

// currentSettings reads the session's values of the named settings; an
// unknown name is ClickHouse's UNKNOWN_SETTING.
func (c *Conn) currentSettings(settings map[string]string) (map[string]string, error) {
	names := sortedKeys(settings)
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = quoteString(n)
	}
	res, err := c.run("SELECT name, value FROM system.settings WHERE name IN ("+strings.Join(quoted, ",")+")", "TabSeparatedRaw", nil)
	if err != nil {
		return nil, err
	}
	previous := map[string]string{}
	for _, line := range strings.Split(strings.TrimRight(string(res.Data), "\n"), "\n") {
		if name, value, ok := strings.Cut(line, "\t"); ok {
			previous[name] = value
		}
	}
	for _, n := range names {
		if _, known := previous[n]; !known {
			return nil, newError(fmt.Sprintf("Code: 115. DB::Exception: Unknown setting '%s'. (UNKNOWN_SETTING)", n))
		}
	}
	return previous, nil
}

// applySettings sets each setting on the session; an unknown name is an error.
func (c *Conn) applySettings(settings map[string]string) (map[string]string, error) {
	previous, err := c.currentSettings(settings)
	if err != nil {
		return nil, err
	}
	if _, err := c.run(setStatement(settings), "", nil); err != nil {
		return nil, err
	}
	return previous, nil
}

func setStatement(settings map[string]string) string {
	set := make([]string, 0, len(settings))
	for _, n := range sortedKeys(settings) {
		set = append(set, quoteIdent(n)+" = "+quoteString(settings[n]))
	}
	return "SET " + strings.Join(set, ", ")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c *Conn) run(sql, format string, params map[string]string) (Result, error) {
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
	l := c.e.lib
	res := l.queryWithParams(c.handle, q, qlen, f, flen, namePtrs, nameLens, valuePtrs, valueLens, uintptr(len(names)))
	if res == nil {
		return Result{}, newError("engine returned no result")
	}
	defer l.destroyResult(res)
	if msg := l.resultError(res); msg != nil {
		return Result{}, newError(goString(msg))
	}
	out := Result{
		RowsRead:     l.rowsRead(res),
		BytesRead:    l.bytesRead(res),
		RowsWritten:  l.rowsWritten(res),
		BytesWritten: l.bytesWritten(res),
		Elapsed:      l.elapsed(res),
	}
	if n := l.resultLength(res); n > 0 {
		out.Data = append([]byte(nil), unsafe.Slice(l.resultBuffer(res), n)...)
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
