package papan

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"time"
)

//go:embed templates/*.html
var templates embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"add": func(a, b float64) float64 { return a + b },
	"sub": func(a, b float64) float64 { return a - b },
}).ParseFS(templates, "templates/*.html"))

// Server answers the board's pages.
type Server struct {
	cfg    Config
	store  *Store
	logger *slog.Logger
	now    func() time.Time
}

// New serves the pages from db.
func New(cfg Config, db Warehouse, logger *slog.Logger) *Server {
	return &Server{cfg: cfg, store: NewStore(db), logger: logger, now: time.Now}
}

// Handler routes the pages: / (the nation), /provinsi/{code} and
// /kota/{code}; each takes ?date=YYYY-MM-DD, ?sort= and ?lang=en.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.national)
	mux.HandleFunc("GET /provinsi/{code}", s.province)
	mux.HandleFunc("GET /kota/{code}", s.city)
	return mux
}

// Serve answers on l until ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	err := srv.Serve(l)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

var (
	provinceCode = regexp.MustCompile(`^[0-9]{2}$`)
	cityCode     = regexp.MustCompile(`^[0-9]{2}\.[0-9]{2}$`)
)

// request is what every page reads from its URL.
type request struct {
	lang  Lang
	day   time.Time // as of the end of this day, WIB
	today time.Time
	sort  string
}

// parse reads the URL's date, sort and language. A date after today is
// today: the views do not know the future.
func (s *Server) parse(r *http.Request) (request, bool) {
	q := r.URL.Query()
	now := s.now().In(WIB)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, WIB)
	req := request{lang: ParseLang(q.Get("lang")), day: today, today: today, sort: q.Get("sort")}
	if d := q.Get("date"); d != "" {
		day, err := time.ParseInLocation(time.DateOnly, d, WIB)
		if err != nil || day.Year() < 2000 {
			return req, false
		}
		if day.Before(today) {
			req.day = day
		}
	}
	return req, true
}

// link is a path with the request's date and language kept, and a sort.
func (req request) link(path, sort string) string {
	v := url.Values{}
	if !req.day.Equal(req.today) {
		v.Set("date", req.day.Format(time.DateOnly))
	}
	if sort != "" {
		v.Set("sort", sort)
	}
	if req.lang == English {
		v.Set("lang", string(English))
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

func (s *Server) national(w http.ResponseWriter, r *http.Request) {
	s.serve(w, r, func(ctx context.Context, req request, p *page) (int, error) {
		provinces, err := s.store.Provinces(ctx, req.day)
		if err != nil {
			return 0, err
		}
		target, err := s.store.Target(ctx, req.day.Year(), "")
		if err != nil {
			return 0, err
		}
		firing, err := s.store.Firing(ctx, req.day)
		if err != nil {
			return 0, err
		}
		nation := Nation(provinces, target)
		p.Title = p.L["nation"]
		p.Headline = p.figures(nation, false)
		p.Board = p.board(req, p.L["provinces"], "/provinsi/", provinces, firing)
		return http.StatusOK, nil
	})
}

// Nation sums the provinces against the nation's own target when it has one.
func Nation(provinces []Region, target *Target) Region {
	var provincesTarget uint64
	for _, p := range provinces {
		provincesTarget += p.Target
	}
	return Sum("", "Indonesia", provinces, func(enrolled uint64) uint64 { return NationalTarget(target, enrolled, provincesTarget) })
}

func (s *Server) province(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	s.serve(w, r, func(ctx context.Context, req request, p *page) (int, error) {
		if !provinceCode.MatchString(code) {
			return http.StatusNotFound, nil
		}
		// The province's row is summed from its cities rather than read from
		// attainment_province, which would count every city of the nation
		// once more.
		name, found, err := s.store.ProvinceName(ctx, code)
		if err != nil || !found {
			return http.StatusNotFound, err
		}
		cities, err := s.store.Cities(ctx, req.day, code)
		if err != nil {
			return 0, err
		}
		target, err := s.store.Target(ctx, req.day.Year(), code)
		if err != nil {
			return 0, err
		}
		own := Sum(code, name, cities, func(enrolled uint64) uint64 { return RegionTarget(target, enrolled) })
		firing, err := s.store.Firing(ctx, req.day)
		if err != nil {
			return 0, err
		}
		own.Alert = firing[code]
		p.Title = own.Name
		p.Crumbs = []crumb{{p.L["nation"], req.link("/", "")}}
		p.Headline = p.figures(own, true)
		p.Board = p.board(req, p.L["cities"], "/kota/", cities, firing)
		return http.StatusOK, nil
	})
}

func (s *Server) city(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	s.serve(w, r, func(ctx context.Context, req request, p *page) (int, error) {
		if !cityCode.MatchString(code) {
			return http.StatusNotFound, nil
		}
		city, province, found, err := s.store.City(ctx, req.day, code)
		if err != nil || !found {
			return http.StatusNotFound, err
		}
		firing, err := s.store.Firing(ctx, req.day)
		if err != nil {
			return 0, err
		}
		year := req.day.Year()
		cur, err := s.store.Cumulative(ctx, code, year, req.day)
		if err != nil {
			return 0, err
		}
		last, err := s.store.Cumulative(ctx, code, year-1, time.Date(year-1, 12, 31, 0, 0, 0, 0, WIB))
		if err != nil {
			return 0, err
		}
		alerts, err := s.store.Alerts(ctx, req.day, code, 50)
		if err != nil {
			return 0, err
		}
		city.Alert = firing[code]
		p.Title = city.Name
		p.Crumbs = []crumb{{p.L["nation"], req.link("/", "")}, {province.Name, req.link("/provinsi/"+province.Code, "")}}
		p.Headline = p.figures(city, true)
		chart := BuildChart(cur, last, city.Target, req.day, req.lang)
		p.Chart = &chart
		p.HasLastYear = len(last) > 0
		p.Alerts = p.alertRows(alerts)
		p.ShowAlerts = true
		return http.StatusOK, nil
	})
}

// serve renders a page: fill gives its figures and a status (0: 200), or the
// warehouse's error, shown as a page of its own with 503.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, fill func(context.Context, request, *page) (int, error)) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	req, ok := s.parse(r)
	p := newPage(req, r.URL.Path)
	status := http.StatusOK
	if !ok {
		status, p.Problem = http.StatusBadRequest, p.L["bad_date"]
	} else {
		st, err := fill(ctx, req, p)
		switch {
		case err != nil:
			s.logger.Warn("page unavailable", "path", r.URL.Path, "err", err)
			status, p.Problem = http.StatusServiceUnavailable, p.L["unavailable"]
		case st == http.StatusNotFound:
			status, p.Problem = st, p.L["not_found"]
		}
		if err == nil {
			p.Health = s.health(ctx, req)
		}
	}
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, "page", p); err != nil {
		s.logger.Error("render page", "path", r.URL.Path, "err", err)
		http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// health says how fresh the counted figures are: the newest counted event,
// and whether it is older than StaleAfter.
func (s *Server) health(ctx context.Context, req request) *health {
	l := labels[req.lang]
	newest, err := s.store.Newest(ctx)
	if err != nil {
		s.logger.Warn("freshness unavailable", "err", err)
		return &health{Status: "down", Text: l["unavailable"]}
	}
	return Health(newest, s.now(), s.cfg.StaleAfter, req.lang)
}

// Health judges the pipeline by its newest counted event at now.
func Health(newest, now time.Time, staleAfter time.Duration, lang Lang) *health {
	l := labels[lang]
	switch {
	case newest.IsZero() || newest.Unix() <= 0:
		return &health{Status: "empty", Text: l["health_empty"], Newest: l["none"]}
	case now.Sub(newest) > staleAfter:
		return &health{Status: "stale", Text: l["health_stale"] + " " + FormatTime(newest, lang), Newest: FormatTime(newest, lang)}
	default:
		return &health{Status: "ok", Text: l["health_ok"], Newest: FormatTime(newest, lang)}
	}
}
