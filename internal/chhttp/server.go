// Package chhttp serves ClickHouse's HTTP interface on top of the in-process
// engine, so that clickhouse-go, curl and analysts' tools reach the embedded
// warehouse exactly as they reach a ClickHouse server.
package chhttp

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	chcompress "github.com/ClickHouse/ch-go/compress"

	"github.com/ikd-pipeline/ikd/internal/engine"
)

// Engine runs statements, each in a session of its own or in a session
// opened with Connect; *engine.Engine is one.
type Engine interface {
	Query(engine.Request) (engine.Result, error)
	Connect() (*engine.Conn, error)
	Version() string
}

// Config says where and for whom the interface listens, and its limits.
type Config struct {
	Addr     string // host:port on a loopback address
	User     string // when set, requests must authenticate as User/Password (or as the analyst)
	Password string
	// AnalystUser and AnalystPassword, when set, are a second login that
	// may only read (and change settings), whatever it asks.
	AnalystUser     string
	AnalystPassword string
	TempDir         string // where request bodies wait for the engine; default os.TempDir()
	// UserFiles is the only directory file() may read; "" refuses file().
	UserFiles string
	// MaxBodyBytes caps a request body as sent; MaxDecompressedBytes caps it
	// once decompressed. 0 means the defaults (1 GiB, 4 GiB).
	MaxBodyBytes         int64
	MaxDecompressedBytes int64
	// ReadTimeout bounds reading one request, body included; default 5 min.
	ReadTimeout time.Duration
	// MaxExecutionTime is max_execution_time for statements that do not set
	// their own; default 60 s, negative means none.
	MaxExecutionTime time.Duration
	// MaxSessions caps open session_id sessions; default 64.
	MaxSessions int
	// ReadMaxThreads is max_threads for reads that do not set their own, and
	// the most the analyst may set, so that an analyst's long query leaves
	// cores to the inserts; 0 means half the cores (at least 1), negative none.
	ReadMaxThreads int
	// ReadNice is os_thread_priority for reads that do not set their own,
	// and the least the analyst may set, so that the inserts run first when
	// the CPUs are short; 0 means 10, negative none.
	ReadNice int
	Logger   *slog.Logger
}

// Server is a running HTTP interface.
type Server struct {
	eng            Engine
	cfg            Config
	ln             net.Listener
	http           *http.Server
	tz             string
	sessions       *sessions
	tableFunctions map[string]bool
	readLimits     []readLimit       // what every read gets unless it chooses
	parsers        chan *engine.Conn // idle sessions the guard parses in
	parses         *parses           // statements the engine parsed lately
	stop           chan struct{}
}

const (
	defaultReadNice       = 10
	defaultSessionTimeout = 60 * time.Second
	maxSessionTimeout     = 3600 * time.Second
)

// Listen binds cfg.Addr, refusing non-loopback addresses, and serves in the
// background until Close.
func Listen(eng Engine, cfg Config) (*Server, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("clickhouse http address %q: %w", cfg.Addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("clickhouse http address %q: the embedded warehouse listens on loopback only", cfg.Addr)
	}
	s, err := newServer(eng, cfg)
	if err != nil {
		return nil, err
	}
	s.ln, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("clickhouse http: listen %s: %w (is another ikd-dev running?)", cfg.Addr, err)
	}
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: cfg.ReadTimeout, IdleTimeout: 2 * time.Minute}
	s.stop = make(chan struct{})
	go s.expireSessions()
	go func() {
		if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Logger.Error("clickhouse http stopped", "err", err)
		}
	}()
	return s, nil
}

// newServer applies the defaults of cfg and learns the engine's timezone,
// which ClickHouse reports in every response.
func newServer(eng Engine, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	if err := os.MkdirAll(cfg.TempDir, 0o755); err != nil {
		return nil, fmt.Errorf("clickhouse http temp dir: %w", err)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 30
	}
	if cfg.MaxDecompressedBytes <= 0 {
		cfg.MaxDecompressedBytes = 4 << 30
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 5 * time.Minute
	}
	if cfg.MaxExecutionTime == 0 {
		cfg.MaxExecutionTime = 60 * time.Second
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 64
	}
	if cfg.ReadMaxThreads == 0 {
		cfg.ReadMaxThreads = max(1, runtime.NumCPU()/2)
	}
	if cfg.ReadNice == 0 {
		cfg.ReadNice = defaultReadNice
	}
	var limits []readLimit
	if cfg.ReadMaxThreads > 0 {
		limits = append(limits, threadsLimit(cfg.ReadMaxThreads))
	}
	if cfg.ReadNice > 0 {
		limits = append(limits, niceLimit(cfg.ReadNice))
	}
	if cfg.UserFiles != "" {
		abs, err := filepath.Abs(cfg.UserFiles)
		if err != nil {
			return nil, fmt.Errorf("clickhouse http user_files %q: %w", cfg.UserFiles, err)
		}
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return nil, fmt.Errorf("clickhouse http user_files: %w", err)
		}
		cfg.UserFiles = abs
	}
	res, err := eng.Query(engine.Request{SQL: "SELECT timezone()", Format: "TabSeparatedRaw"})
	if err != nil {
		return nil, fmt.Errorf("clickhouse http: ask engine for its timezone: %w", err)
	}
	fns, err := eng.Query(engine.Request{SQL: "SELECT lower(name) FROM system.table_functions", Format: "TabSeparatedRaw"})
	if err != nil {
		return nil, fmt.Errorf("clickhouse http: ask engine for its table functions: %w", err)
	}
	tableFunctions := map[string]bool{}
	for _, name := range strings.Fields(string(fns.Data)) {
		tableFunctions[name] = true
	}
	return &Server{
		eng: eng, cfg: cfg, tz: strings.TrimSpace(string(res.Data)), tableFunctions: tableFunctions, readLimits: limits,
		sessions: &sessions{open: map[string]*session{}, max: cfg.MaxSessions, now: time.Now, connect: eng.Connect},
		parsers:  make(chan *engine.Conn, 4),
		parses:   newParses(maxParses),
	}, nil
}

// expireSessions closes idle sessions past their timeout until Close.
func (s *Server) expireSessions() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sessions.expire()
		}
	}
}

// Addr is the address the interface listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting requests and waits for those under way.
func (s *Server) Close(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	close(s.stop)
	s.sessions.closeAll()
	s.closeParsers()
	return err
}

// interfaceParams are the URL parameters of the HTTP interface itself; every
// other parameter, but param_*, is a setting for the statement.
var interfaceParams = map[string]bool{
	"query": true, "database": true, "default_format": true, "query_id": true,
	"user": true, "password": true, "quota_key": true, "compress": true, "decompress": true,
	"session_id": true, "session_timeout": true, "session_check": true, "buffer_size": true,
	"wait_end_of_query": true, "enable_http_compression": true, "http_zlib_compression_level": true,
	"http_native_compression_disable_checksumming_on_decompress": true,
	"network_compression_method":                                 true, "network_zstd_compression_level": true,
	"client_protocol_version": true, // the engine rejects it as a setting; see ../../README.md
	"default_session_timeout": true,
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	switch {
	case r.URL.Path == "/ping" || r.URL.Path == "/replicas_status":
		_, _ = io.WriteString(w, "Ok.\n")
		return
	case r.URL.Path != "/":
		s.fail(w, params, &engine.Error{Code: 0, Message: "There is no handle " + r.URL.Path}, http.StatusNotFound)
		return
	case r.Method == http.MethodGet && !params.Has("query"):
		_, _ = io.WriteString(w, "Ok.\n")
		return
	}
	user, level, err := s.authenticate(r, params)
	if err != nil {
		s.fail(w, params, err, http.StatusUnauthorized)
		return
	}
	analyst := level == 2 // only the analyst login is readonly=2 by itself
	readonly, err := requestedReadonly(params, level)
	if err != nil {
		s.fail(w, params, err, 0)
		return
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		s.fail(w, params, newErr(48, "External tables are not supported by the embedded warehouse. (NOT_IMPLEMENTED)"), 0)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	req, cleanup, err := s.request(r, params, readonly, analyst)
	defer cleanup()
	if err != nil {
		s.fail(w, params, err, 0)
		return
	}
	if s.cfg.MaxExecutionTime > 0 && !params.Has("max_execution_time") {
		req.Settings["max_execution_time"] = strconv.FormatFloat(s.cfg.MaxExecutionTime.Seconds(), 'f', -1, 64)
	}
	start := time.Now()
	res, err := s.inSession(user, params, func(q querier) (engine.Result, error) { return s.run(q, req, params) })
	if err != nil {
		s.cfg.Logger.Debug("query failed", "err", err)
		s.fail(w, params, err, 0)
		return
	}
	s.reply(w, r, params, req.Format, res, time.Since(start))
}

// request turns an HTTP request into one engine statement. Data sent with an
// INSERT waits in a temporary file, since the engine reads inline data only
// partially; cleanup removes it.
func (s *Server) request(r *http.Request, params url.Values, readonly int, analyst bool) (engine.Request, func(), error) {
	nothing := func() {}
	body, err := decodedBody(r, params, s.cfg.MaxDecompressedBytes)
	if err != nil {
		return engine.Request{}, nothing, newErr(27, "Cannot read request body: "+err.Error()+". (CANNOT_PARSE_INPUT_ASSERTION_FAILED)")
	}
	defer body.Close()
	query := params.Get("query")
	if query == "" {
		// Without a query parameter the body is the query, data and all.
		b, err := io.ReadAll(body)
		if err != nil {
			return engine.Request{}, nothing, newErr(27, "Cannot read request body: "+err.Error())
		}
		query, body = string(b), io.NopCloser(strings.NewReader(""))
	}
	st := parseStatement(query)
	req := engine.Request{
		Database: params.Get("database"),
		Params:   map[string]string{},
		Settings: map[string]string{},
		Format:   firstNonEmpty(st.format, params.Get("default_format"), "TabSeparated"),
	}
	for name, values := range params {
		switch {
		case strings.HasPrefix(name, "param_"):
			req.Params[strings.TrimPrefix(name, "param_")] = values[0]
		case name == "readonly": // enforced by the front, never set on the engine
		case deniedSettings[name]:
			return req, nothing, newErr(452, "Setting "+name+" should not be changed through the embedded warehouse. (SETTING_CONSTRAINT_VIOLATION)")
		case !interfaceParams[name]:
			req.Settings[name] = values[0]
		}
	}
	if !st.insert || st.dataFormat == "" {
		query = rewriteFilePaths(query, s.cfg.UserFiles)
		kind, formatted, err := s.guard(query, req.Params, readonly)
		if err != nil {
			return req, nothing, err
		}
		for _, l := range s.readLimits {
			if err := l.apply(req.Settings, kind, formatted, analyst); err != nil {
				return req, nothing, err
			}
		}
		rest, err := io.ReadAll(body)
		if err != nil {
			return engine.Request{}, nothing, newErr(27, "Cannot read request body: "+err.Error())
		}
		if len(bytes.TrimSpace(rest)) > 0 {
			query += "\n" + string(rest)
		}
		req.SQL = query
		return req, nothing, nil
	}
	head := rewriteFilePaths(strings.TrimSpace(st.head), s.cfg.UserFiles)
	if _, _, err := s.guard(head+" FORMAT "+st.dataFormat, req.Params, readonly); err != nil {
		return req, nothing, err
	}

	f, err := os.CreateTemp(s.cfg.TempDir, "insert-*.data")
	if err != nil {
		return engine.Request{}, nothing, newErr(1001, "cannot buffer insert data: "+err.Error())
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	if _, err := io.Copy(f, io.MultiReader(strings.NewReader(st.inline), body)); err != nil {
		return engine.Request{}, cleanup, newErr(1001, "cannot buffer insert data: "+err.Error())
	}
	if err := f.Close(); err != nil {
		return engine.Request{}, cleanup, newErr(1001, "cannot buffer insert data: "+err.Error())
	}
	if strings.EqualFold(st.dataFormat, "Values") {
		if err := s.guardValues(f.Name(), req); err != nil {
			return req, cleanup, err
		}
	}
	// The front's own FROM INFILE: the guard checked the statement without it.
	req.SQL = fmt.Sprintf("%s FROM INFILE '%s' FORMAT %s", head, f.Name(), st.dataFormat)
	return req, cleanup, nil
}

// valuesExpressionSettings let the Values input format evaluate SQL.
var valuesExpressionSettings = []string{
	"input_format_values_interpret_expressions", "input_format_values_deduce_templates_of_expressions",
}

// maxGuardedValues is the most Values data the guard parses; larger data
// is taken as literals only.
const maxGuardedValues = 256 << 10

// guardValues checks an insert's Values data, in which the engine
// evaluates expressions the statement's parse never showed
// (VALUES (file('/etc/passwd')) would read the file): the rows are parsed
// as a SELECT of the same expressions and decided on as any statement. Data
// that does not parse so, or is too large, is read as literals only.
func (s *Server) guardValues(path string, req engine.Request) error {
	literalsOnly := func() error {
		for _, name := range valuesExpressionSettings {
			req.Settings[name] = "0"
		}
		return nil
	}
	info, err := os.Stat(path)
	if err != nil || info.Size() > maxGuardedValues {
		return literalsOnly()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return literalsOnly()
	}
	rows := strings.TrimSuffix(strings.TrimSpace(string(data)), ";")
	_, _, err = s.guard("SELECT "+rows, req.Params, 0)
	var ee *engine.Error
	if errors.As(err, &ee) && (ee.Code == 497 || ee.Code == 452) {
		return err
	}
	if err != nil {
		return literalsOnly()
	}
	return nil
}

// helloQuery is how clickhouse-go asks an HTTP server who it is.
const helloQuery = "SELECT displayName(), version(), revision(), timezone()"

func (s *Server) run(q querier, req engine.Request, params url.Values) (engine.Result, error) {
	rev := params.Get("client_protocol_version")
	if rev == "" || strings.Join(strings.Fields(req.SQL), " ") != helloQuery {
		return q.Query(req)
	}
	// The engine writes Native at protocol revision 0 whatever it is asked,
	// so it must tell the client revision 0, in a block the client decodes
	// at its own revision.
	req.SQL = "SELECT displayName(), version(), toUInt32(0), timezone()"
	res, err := q.Query(req)
	if err != nil || req.Format != "Native" {
		return res, err
	}
	revision, err := strconv.ParseUint(rev, 10, 64)
	if err != nil {
		return res, newErr(27, "client_protocol_version must be a number. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)")
	}
	res.Data, err = reencodeNative(res.Data, revision)
	return res, err
}

func (s *Server) reply(w http.ResponseWriter, r *http.Request, params url.Values, format string, res engine.Result, took time.Duration) {
	h := w.Header()
	h.Set("Content-Type", contentType(format))
	h.Set("X-ClickHouse-Format", format)
	h.Set("X-ClickHouse-Timezone", s.tz)
	h.Set("X-ClickHouse-Server-Display-Name", "ikd-embedded")
	if id := params.Get("query_id"); id != "" {
		h.Set("X-ClickHouse-Query-Id", id)
	}
	h.Set("X-ClickHouse-Summary", fmt.Sprintf(
		`{"read_rows":"%d","read_bytes":"%d","written_rows":"%d","written_bytes":"%d","total_rows_to_read":"0","result_rows":"0","result_bytes":"%d","elapsed_ns":"%d"}`,
		res.RowsRead, res.BytesRead, res.RowsWritten, res.BytesWritten, len(res.Data), took.Nanoseconds()))
	data := res.Data
	switch {
	case params.Get("compress") == "1":
		compressed, err := compressNative(data)
		if err != nil {
			s.fail(w, params, newErr(1001, "compress result: "+err.Error()), 0)
			return
		}
		data = compressed
	case params.Get("enable_http_compression") == "1" && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip"):
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(data)
		_ = zw.Close()
		data = buf.Bytes()
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}

// fail answers as ClickHouse does: a status chosen by the error code, the
// code in X-ClickHouse-Exception-Code and the exception text as the body.
func (s *Server) fail(w http.ResponseWriter, params url.Values, err error, status int) {
	var ee *engine.Error
	if !errors.As(err, &ee) {
		ee = newErr(1001, err.Error())
	}
	if status == 0 {
		status = statusFor(ee.Code)
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("X-ClickHouse-Exception-Code", strconv.Itoa(ee.Code))
	if id := params.Get("query_id"); id != "" {
		h.Set("X-ClickHouse-Query-Id", id)
	}
	w.WriteHeader(status)
	msg := ee.Message
	if !strings.Contains(msg, "(version ") {
		msg += " (version " + s.eng.Version() + ")"
	}
	_, _ = io.WriteString(w, msg+"\n")
}

// authenticate names the request's user and the least readonly level it
// has: 0 for the admin (or anyone when no admin is configured), 2 for the
// analyst (reads and settings).
func (s *Server) authenticate(r *http.Request, params url.Values) (string, int, error) {
	user, pass := r.Header.Get("X-ClickHouse-User"), r.Header.Get("X-ClickHouse-Key")
	if u, p, ok := r.BasicAuth(); ok {
		user, pass = u, p
	}
	if params.Has("user") {
		user, pass = params.Get("user"), params.Get("password")
	}
	user = firstNonEmpty(user, "default") // as ClickHouse names a client that gives no user
	if s.cfg.AnalystUser != "" && matches(user, pass, s.cfg.AnalystUser, s.cfg.AnalystPassword) {
		return user, 2, nil
	}
	if s.cfg.User == "" || matches(user, pass, s.cfg.User, s.cfg.Password) {
		return user, 0, nil
	}
	return "", 0, newErr(516, fmt.Sprintf("%s: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)", firstNonEmpty(user, "default")))
}

func matches(user, pass, wantUser, wantPass string) bool {
	okUser := subtle.ConstantTimeCompare([]byte(user), []byte(wantUser)) == 1
	okPass := subtle.ConstantTimeCompare([]byte(pass), []byte(wantPass)) == 1
	return okUser && okPass
}

// requestedReadonly applies the request's readonly parameter on top of the
// user's level; lowering it is refused as ClickHouse refuses it.
func requestedReadonly(params url.Values, level int) (int, error) {
	if !params.Has("readonly") {
		return level, nil
	}
	asked, err := strconv.Atoi(params.Get("readonly"))
	if err != nil || asked < 0 || asked > 2 {
		return 0, newErr(27, "Cannot parse readonly="+params.Get("readonly")+". (CANNOT_PARSE_INPUT_ASSERTION_FAILED)")
	}
	if level > 0 && (asked == 0 || asked == 2 && level == 1) {
		return 0, newErr(164, "Cannot modify 'readonly' setting in readonly mode. (READONLY)")
	}
	return max(asked, level), nil
}

// querier runs statements: the engine (a fresh session per statement) or
// a client's session.
type querier interface {
	Query(engine.Request) (engine.Result, error)
}

// inSession runs fn in the request's session_id session, or in a session
// of its own when the request names none.
func (s *Server) inSession(user string, params url.Values, fn func(querier) (engine.Result, error)) (engine.Result, error) {
	id := params.Get("session_id")
	if id == "" {
		return fn(s.eng)
	}
	timeout := defaultSessionTimeout
	if v := params.Get("session_timeout"); v != "" {
		secs, err := strconv.Atoi(v)
		if err != nil || secs < 0 {
			return engine.Result{}, newErr(36, "Invalid session timeout: '"+v+"'. (BAD_ARGUMENTS)")
		}
		timeout = time.Duration(secs) * time.Second
		if timeout > maxSessionTimeout {
			return engine.Result{}, newErr(36, fmt.Sprintf("Session timeout '%d' is larger than max_session_timeout: %d. (BAD_ARGUMENTS)", secs, int(maxSessionTimeout.Seconds())))
		}
	}
	key := sessionKey(user, id)
	sess, err := s.sessions.acquire(key, id, timeout, params.Get("session_check") == "1")
	if err != nil {
		return engine.Result{}, err
	}
	defer s.sessions.release(key, sess)
	return fn(sess.conn)
}

// guard has the engine parse sql (formatQuery refuses more than one
// statement; EXPLAIN AST gives the tree), or remembers its parse, and
// decides whether it may run. It returns the statement's kind and canonical
// text.
func (s *Server) guard(sql string, params map[string]string, readonly int) (string, string, error) {
	p, err := s.parse(sql, params)
	if err != nil {
		return "", "", err
	}
	err = decide(p.formatted, p.root, policy{
		readonly: readonly, userFiles: s.cfg.UserFiles, tableFunctions: s.tableFunctions, fileExists: fileExists,
	})
	if err != nil {
		return "", "", err
	}
	return p.root.kind, p.formatted, nil
}

// parse is the engine's parse of sql with params, remembered when it parsed.
func (s *Server) parse(sql string, params map[string]string) (parse, error) {
	key, keep := parseKey(sql, params)
	if keep {
		if p, ok := s.parses.get(key); ok {
			return p, nil
		}
	}
	c, err := s.parser()
	if err != nil {
		return parse{}, err
	}
	defer s.putParser(c)
	formatted, err := c.Query(engine.Request{SQL: "SELECT formatQuery({q:String})", Format: "TabSeparatedRaw", Params: map[string]string{"q": escapeParam(sql)}})
	if err != nil {
		return parse{}, withoutParseScope(err)
	}
	text := string(formatted.Data)
	// Settings first: EXPLAIN AST would already apply a SETTINGS clause.
	if err := checkText(text, ""); err != nil {
		return parse{}, err
	}
	ast, err := c.Query(engine.Request{SQL: "EXPLAIN AST " + text, Format: "TabSeparatedRaw", Params: params})
	if err != nil {
		return parse{}, err
	}
	p := parse{formatted: text, root: parseAST(string(ast.Data))}
	if keep && p.root != nil {
		s.parses.put(key, p)
	}
	return p, nil
}

// withoutParseScope drops the guard's own wrapping from a syntax error, so
// the client reads about its statement only.
func withoutParseScope(err error) error {
	var ee *engine.Error
	if !errors.As(err, &ee) {
		return err
	}
	if i := strings.Index(ee.Message, ": In scope SELECT formatQuery("); i >= 0 {
		name := ee.Message[strings.LastIndex(ee.Message, " ("):] // " (SYNTAX_ERROR)"
		return &engine.Error{Code: ee.Code, Message: strings.TrimRight(ee.Message[:i], " .:") + "." + name}
	}
	return err
}

// parser hands out an idle parsing session, or a new one. Parsing changes
// nothing in a session (EXPLAIN AST applies a SETTINGS clause to itself
// only), so parsing sessions are reused.
func (s *Server) parser() (*engine.Conn, error) {
	select {
	case c := <-s.parsers:
		return c, nil
	default:
		return s.eng.Connect()
	}
}

func (s *Server) putParser(c *engine.Conn) {
	select {
	case s.parsers <- c:
	default:
		c.Close()
	}
}

func (s *Server) closeParsers() {
	for {
		select {
		case c := <-s.parsers:
			c.Close()
		default:
			return
		}
	}
}

// fileExists reports whether name, relative to the process's directory or
// absolute, exists: the engine's default database would open it as a table.
func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// escapeParam writes a query parameter value in the escaped form the engine
// parses it from.
func escapeParam(v string) string {
	return strings.NewReplacer("\\", "\\\\", "\n", "\\n", "\t", "\\t", "\r", "\\r").Replace(v)
}

func decodedBody(r *http.Request, params url.Values, limit int64) (io.ReadCloser, error) {
	var body io.ReadCloser = r.Body
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		body = zr
	case "deflate":
		zr, err := zlib.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		body = zr
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q", enc)
	}
	if params.Get("decompress") == "1" {
		body = io.NopCloser(chcompress.NewReader(body))
	}
	return &cappedReader{ReadCloser: body, left: limit, limit: limit}, nil
}

// cappedReader fails a body that decompresses to more than limit bytes.
type cappedReader struct {
	io.ReadCloser
	left, limit int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, fmt.Errorf("request body exceeds %d bytes once decompressed", c.limit)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left+1]
	}
	n, err := c.ReadCloser.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, fmt.Errorf("request body exceeds %d bytes once decompressed", c.limit)
	}
	return n, err
}

// compressNative frames data in ClickHouse's native compression, as the
// server does for compress=1.
func compressNative(data []byte) ([]byte, error) {
	const chunk = 1 << 20
	w := chcompress.NewWriter(chcompress.LevelLZ4HCDefault, chcompress.LZ4)
	var out []byte
	for len(data) > 0 {
		n := min(chunk, len(data))
		if err := w.Compress(data[:n]); err != nil {
			return nil, err
		}
		out = append(out, w.Data...)
		data = data[n:]
	}
	return out, nil
}

// statusFor mirrors the HTTP statuses ClickHouse gives the common exceptions;
// everything else is 500.
func statusFor(code int) int {
	switch code {
	case 62, 27, 26, 6, 36, 43, 47, 53, 69, 72, 115, 117, 456, 457: // syntax, parse, bad arguments, unknown identifier or setting
		return http.StatusBadRequest
	case 60, 81, 46: // unknown table, database, function
		return http.StatusNotFound
	case 516, 192, 193, 194:
		return http.StatusUnauthorized
	case 164, 497: // readonly, access denied
		return http.StatusForbidden
	case 159: // timeout exceeded
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

func contentType(format string) string {
	switch f := strings.ToLower(format); {
	case strings.HasPrefix(f, "json"):
		return "application/json; charset=UTF-8"
	case strings.HasPrefix(f, "tabseparated") || strings.HasPrefix(f, "tsv"):
		return "text/tab-separated-values; charset=UTF-8"
	case strings.HasPrefix(f, "csv"):
		return "text/csv; charset=UTF-8; header=absent"
	case strings.HasPrefix(f, "pretty") || f == "vertical" || f == "markdown":
		return "text/plain; charset=UTF-8"
	default:
		return "application/octet-stream"
	}
}

func newErr(code int, msg string) *engine.Error {
	return &engine.Error{Code: code, Message: fmt.Sprintf("Code: %d. DB::Exception: %s", code, msg)}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
