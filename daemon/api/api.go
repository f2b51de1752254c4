// Package api serves the appliance's HTTP API: the TaskForce Web API as CONTRACT.md fixes it, plus
// the extras (ports, set-port-mode, tasks, resume-task, healthz) and, on the simulated board, hot-plug.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/evidenced/evidenced/daemon/auth"
	"github.com/evidenced/evidenced/daemon/tasks"
	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/internal/errkind"
	"github.com/evidenced/evidenced/store"
)

// Config of the API.
type Config struct {
	UserManagement bool
	// Sessions: idle timeout (TokenTTL), absolute lifetime, and how often last-used times are
	// written back.
	TokenTTL        time.Duration
	SessionLifetime time.Duration
	SessionFlush    time.Duration
	Throttle        auth.ThrottleConfig
	// BurstQuiet ends a burst of failed logins from one address: its one audit record is written
	// after this long without a failure (default 1 min).
	BurstQuiet time.Duration
	// ScanWait is how long source-drives waits for drives still spinning up.
	ScanWait time.Duration
	// Version is the daemon's version, reported by /healthz (an update shows there).
	Version string
	// PortUsed, when set, is told of each Source port a client scans (scan-port, source-drives):
	// the idle power-off timer starts again for it. Port names are canonical.
	PortUsed func(port string)
}

// Plugger is the simulated board's hot-plug; real boards do not have it.
type Plugger interface {
	PlugDrive(port string, d board.DriveDesc) error
	Unplug(port string) error
}

// Server is the API.
type Server struct {
	board    hal.Board
	tasks    *tasks.Manager
	st       *store.Store
	log      *slog.Logger
	cfg      Config
	sessions *auth.Sessions
	throttle *auth.Throttle
	bursts   *bursts
	dummy    []byte // bcrypt hash compared for unknown users, so timing does not tell

	// streams ends the open event streams (StopEvents).
	streams     context.Context
	stopStreams context.CancelFunc
}

// New returns the API server, with the stored sessions loaded.
func New(board hal.Board, tm *tasks.Manager, st *store.Store, log *slog.Logger, cfg Config) (*Server, error) {
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.ScanWait <= 0 {
		cfg.ScanWait = 3 * time.Second
	}
	if cfg.BurstQuiet <= 0 {
		cfg.BurstQuiet = time.Minute
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.DefaultCost)
	if err != nil {
		return nil, fmt.Errorf("dummy hash: %w", err)
	}
	users, err := auth.Users(st)
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	roles := map[string]auth.Role{}
	for _, u := range users {
		roles[u.Name] = u.Role
	}
	ss, err := auth.NewSessions(st, auth.SessionConfig{Idle: cfg.TokenTTL, Lifetime: cfg.SessionLifetime, Flush: cfg.SessionFlush}, roles, log)
	if err != nil {
		return nil, err
	}
	streams, stop := context.WithCancel(context.Background())
	s := &Server{board: board, tasks: tm, st: st, log: log, cfg: cfg, sessions: ss,
		throttle: auth.NewThrottle(cfg.Throttle), dummy: dummy, streams: streams, stopStreams: stop}
	s.bursts = newBursts(s.audit, cfg.BurstQuiet)
	return s, nil
}

// Run writes sessions' last use back and failed-login bursts to the audit trail until ctx ends,
// then writes what is pending.
func (s *Server) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() { s.sessions.Run(ctx); close(done) }()
	s.bursts.run(ctx)
	<-done
}

// apiError is an error with its HTTP status.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func bad(format string, a ...any) error {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}
func notFound(format string, a ...any) error {
	return &apiError{http.StatusNotFound, fmt.Sprintf(format, a...)}
}
func conflict(format string, a ...any) error {
	return &apiError{http.StatusConflict, fmt.Sprintf(format, a...)}
}

// status maps an error to its HTTP status: an apiError carries its own, an error of an
// errkind.Kind (from tasks, store) gets the kind's, anything else is 500. The message is the
// error's text as it is: kinded errors carry clean messages, so nothing is cut from it.
func status(err error) (int, string) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, ae.msg
	}
	switch errkind.Of(err) {
	case errkind.BadRequest:
		return http.StatusBadRequest, err.Error()
	case errkind.NotFound:
		return http.StatusNotFound, err.Error()
	case errkind.Exists, errkind.Conflict, errkind.Busy:
		return http.StatusConflict, err.Error()
	}
	return http.StatusInternalServerError, "internal error: " + err.Error()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := status(err)
	if code == http.StatusInternalServerError {
		s.log.Error("request failed", "path", r.URL.Path, "err", err)
		msg = "internal error; see the appliance log"
	}
	writeJSON(w, code, ErrorResponse{Error: msg})
}

type handler func(w http.ResponseWriter, r *http.Request) error

// Handler returns the HTTP handler of the whole API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.HandleFunc(rt.path, s.guard(rt, s.authorize))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such endpoint: " + r.URL.Path})
	})
	return s.recoverer(mux)
}

// routes is every route with the role it needs and whether it is audited.
func (s *Server) routes() []route {
	rs := []route{
		{methods: "POST", path: "/login", h: s.login, need: public},
		{methods: "POST", path: "/logout", h: s.logout, need: examiner},
		{methods: "GET", path: "/healthz", h: s.healthz, need: public},
		{methods: "GET", path: "/api/whoami", h: s.whoami, need: examiner},
		{methods: "GET", path: "/api/source-drives", h: s.sourceDrives, need: examiner},
		{methods: "GET", path: "/api/scan-port", h: s.scanPort, need: examiner},
		{methods: "GET", path: "/api/start-image", h: s.startImage, need: examiner, audit: true},
		{methods: "GET", path: "/api/start-logical", h: s.startLogical, need: examiner, audit: true},
		{methods: "GET", path: "/api/diagnose", h: s.diagnose, need: examiner, audit: true},
		{methods: "GET", path: "/api/check-task", h: s.checkTask, need: examiner},
		{methods: "GET", path: "/api/stop-task", h: s.stopTask, need: examiner, audit: true},
		{methods: "GET", path: "/api/resume-task", h: s.resumeTask, need: examiner, audit: true},
		{methods: "GET", path: "/api/create-case", h: s.createCase, need: examiner, audit: true},
		{methods: "GET", path: "/api/edit-case", h: s.editCase, need: examiner, audit: true},
		{methods: "GET", path: "/api/report", h: s.report, need: examiner},
		{methods: "GET", path: "/api/ports", h: s.ports, need: examiner},
		{methods: "GET", path: "/api/set-port-mode", h: s.setPortMode, need: examiner, audit: true},
		{methods: "GET", path: "/api/tasks", h: s.listTasks, need: examiner},
		{methods: "GET", path: "/api/cases", h: s.listCases, need: examiner},
		// The dashboard's live feed; an examiner's carries only the tasks they may see.
		{methods: "GET", path: "/api/events", h: s.events, need: examiner},
		// Examiners read the filter presets start-logical uses; admins change them.
		{methods: "GET POST DELETE", path: "/api/settings", h: s.settings, need: examiner,
			byMethod: map[string]access{"POST": admin, "DELETE": admin}, audit: true},
		// Examiners may change their own password (PATCH ?name=self); the handler checks.
		{methods: "GET POST PATCH DELETE", path: "/api/users", h: s.users, need: admin,
			byMethod: map[string]access{"PATCH": examiner}, audit: true},
		// Reading and changing appliance settings (allowNonUniqueCaseNames) is an admin's.
		{methods: "GET", path: "/api/appliance-settings", h: s.applianceSettings, need: admin, audit: true},
		{methods: "GET", path: "/api/audit", h: s.auditPage, need: admin},
		{methods: "GET", path: "/api/audit/verify", h: s.auditVerify, need: admin},
	}
	if _, ok := s.board.(Plugger); ok {
		rs = append(rs,
			route{methods: "GET", path: "/api/sim/plug", h: s.simPlug, need: admin, audit: true},
			route{methods: "GET", path: "/api/sim/unplug", h: s.simUnplug, need: admin, audit: true})
	}
	return rs
}

// recoverer turns a panic into a 500 without a stack trace in the answer; http.ErrAbortHandler
// goes on to net/http, which ends the connection without a log line.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler { // a handler ending a response it has begun: net/http drops the connection
					panic(v)
				}
				s.log.Error("panic in handler", "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error; see the appliance log"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// ---- authentication

// bearer reads the token of a request: token= in the query, else an Authorization header with
// the Bearer scheme (case-insensitive, RFC 9110).
func bearer(r *http.Request) string {
	if tok := r.URL.Query().Get("token"); tok != "" {
		return tok
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(tok)
	}
	return ""
}

// authorize finds who is calling. Without user management everyone is an admin.
func (s *Server) authorize(r *http.Request) (identity, error) {
	if !s.cfg.UserManagement {
		return identity{Role: auth.Admin}, nil
	}
	tok := bearer(r)
	if tok == "" {
		return identity{}, &apiError{http.StatusUnauthorized, "token missing: log in with POST /login and pass token= or Authorization: Bearer"}
	}
	se, ok := s.sessions.Check(tok)
	if !ok {
		return identity{}, &apiError{http.StatusUnauthorized, "token unknown or expired: log in again with POST /login"}
	}
	return identity{User: se.User, Role: se.Role, token: tok}, nil
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	if !s.cfg.UserManagement {
		return conflict("user management is not enabled on this appliance; the API needs no token")
	}
	user, pass, err := loginBody(w, r)
	if err != nil {
		return err
	}
	if user == "" || pass == "" {
		return bad("username and password are required")
	}
	return s.checkLogin(w, r, user, pass)
}

// checkLogin checks a password under the throttle and answers with a token.
func (s *Server) checkLogin(w http.ResponseWriter, r *http.Request, user, pass string) error {
	addr := clientAddr(r)
	att, wait := s.throttle.Begin(r.Context(), user, addr)
	if att == nil {
		s.bursts.add(addr, "", false)
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		return &apiError{http.StatusTooManyRequests, fmt.Sprintf("too many failed logins for this account or from this address: try again in %d s", secs)}
	}
	hash := s.dummy
	u, err := s.st.User(user)
	if err == nil {
		hash = u.PasswordHash
	}
	ok := bcrypt.CompareHashAndPassword(hash, []byte(pass)) == nil && err == nil
	att.Done(ok)
	if !ok {
		// Never the name itself when it matches no account: people type passwords there.
		name := user
		if err != nil {
			name = auth.NameTag(user)
		}
		s.bursts.add(addr, name, true)
		s.log.Warn("failed login", "user", name, "addr", addr)
		return &apiError{http.StatusUnauthorized, "wrong user name or password"}
	}
	tok, err := s.sessions.Create(u.Name, auth.StoredRole(u.Role))
	if err != nil {
		return err
	}
	s.audit(store.AuditRecord{Time: time.Now(), User: u.Name, Addr: addr, Action: "login", Result: "200 OK"})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err = w.Write([]byte(tok))
	return err
}

// loginBody reads /login's credentials: a JSON body whatever the Content-Type says (curl -d and
// requests.post(data=...) send the document's JSON as a form), else form fields.
func loginBody(w http.ResponseWriter, r *http.Request) (user, pass string, err error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<16))
	if err != nil {
		return "", "", bad("cannot read the request body (at most 64 KiB)")
	}
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '{' {
		var b struct {
			Username string          `json:"username"`
			Password json.RawMessage `json:"password"`
		}
		if err := json.Unmarshal(t, &b); err != nil {
			return "", "", bad("body is not valid JSON: send {\"username\": \"...\", \"password\": \"...\"}")
		}
		user = b.Username
		var ps string
		if err := json.Unmarshal(b.Password, &ps); err == nil {
			pass = ps
		} else {
			var num json.Number
			dec := json.NewDecoder(bytes.NewReader(b.Password))
			dec.UseNumber()
			if dec.Decode(&num) == nil {
				pass = num.String()
			}
		}
		return user, pass, nil
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return "", "", bad("body is not valid JSON: send {\"username\": \"...\", \"password\": \"...\"}")
	}
	f, err := url.ParseQuery(string(body))
	if err != nil {
		return "", "", bad("cannot read the form body: send JSON {\"username\": \"...\", \"password\": \"...\"} or username=...&password=...")
	}
	return f.Get("username"), f.Get("password"), nil
}

// logout ends the session of the token it is called with.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	id := who(r)
	if id.token == "" {
		return conflict("user management is not enabled on this appliance; there is no session to end")
	}
	if err := s.sessions.Revoke(id.token); err != nil {
		return err
	}
	s.audit(store.AuditRecord{Time: time.Now(), User: id.User, Addr: clientAddr(r), Action: "logout", Result: "200 OK"})
	writeJSON(w, http.StatusOK, map[string]string{"loggedOut": id.User})
	return nil
}

// whoami tells a client (the dashboard) who its token belongs to and with which role.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) error {
	id := who(r)
	writeJSON(w, http.StatusOK, map[string]any{"user": id.User, "role": id.Role, "userManagement": s.cfg.UserManagement})
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	if err := noParams(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.cfg.Version})
	return nil
}
