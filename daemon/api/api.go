// Package api serves the appliance's HTTP API: the TaskForce Web API as CONTRACT.md fixes it, plus
// the extras (ports, set-port-mode, tasks, resume-task, healthz) and, on the simulated board, hot-plug.
package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/evidenced/evidenced/daemon/tasks"
	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/store"
)

// Config of the API.
type Config struct {
	UserManagement bool
	TokenTTL       time.Duration
	// ScanWait is how long source-drives waits for drives still spinning up.
	ScanWait time.Duration
	// Version is the daemon's version, reported by /healthz (an update shows there).
	Version string
}

// Plugger is the simulated board's hot-plug; real boards do not have it.
type Plugger interface {
	PlugDrive(port string, d board.DriveDesc) error
	Unplug(port string) error
}

// Server is the API.
type Server struct {
	board hal.Board
	tasks *tasks.Manager
	st    *store.Store
	log   *slog.Logger
	cfg   Config

	// streams ends the open event streams (StopEvents).
	streams     context.Context
	stopStreams context.CancelFunc

	mu    sync.Mutex
	fails map[string]int // failed logins per client address
	dummy []byte         // bcrypt hash compared for unknown users, so timing does not tell
}

// New returns the API server.
func New(board hal.Board, tm *tasks.Manager, st *store.Store, log *slog.Logger, cfg Config) *Server {
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.ScanWait <= 0 {
		cfg.ScanWait = 3 * time.Second
	}
	dummy, _ := bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.DefaultCost)
	streams, stop := context.WithCancel(context.Background())
	return &Server{board: board, tasks: tm, st: st, log: log, cfg: cfg, fails: map[string]int{}, dummy: dummy,
		streams: streams, stopStreams: stop}
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

// status maps an error to its HTTP status; unknown errors are 500 with a generic text.
func status(err error) (int, string) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.status, ae.msg
	case errors.Is(err, tasks.ErrBadRequest):
		return http.StatusBadRequest, trimSentinel(err)
	case errors.Is(err, tasks.ErrNotFound), errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, trimSentinel(err)
	case errors.Is(err, tasks.ErrBusy), errors.Is(err, tasks.ErrConflict), errors.Is(err, store.ErrExists):
		return http.StatusConflict, trimSentinel(err)
	}
	return http.StatusInternalServerError, "internal error: " + err.Error()
}

func trimSentinel(err error) string {
	s := err.Error()
	for _, suf := range []string{": bad request", ": not found", ": busy", ": conflict", ": already exists"} {
		s = strings.TrimSuffix(s, suf)
	}
	return s
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
	writeJSON(w, code, map[string]string{"error": msg})
}

type handler func(w http.ResponseWriter, r *http.Request) error

// Handler returns the HTTP handler of the whole API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(method, path string, h handler, auth bool) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			allowed := strings.Fields(method)
			if !slices.Contains(allowed, r.Method) && !(slices.Contains(allowed, http.MethodGet) && r.Method == http.MethodHead) {
				w.Header().Set("Allow", strings.Join(allowed, ", "))
				writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": path + " answers " + strings.Join(allowed, ", ") + " only"})
				return
			}
			if auth {
				if err := s.authorize(r); err != nil {
					s.fail(w, r, err)
					return
				}
			}
			if err := h(w, r); err != nil {
				s.fail(w, r, err)
			}
		})
	}
	route("POST", "/login", s.login, false)
	route("GET", "/healthz", s.healthz, false)
	route("GET", "/api/source-drives", s.sourceDrives, true)
	route("GET", "/api/scan-port", s.scanPort, true)
	route("GET", "/api/start-image", s.startImage, true)
	route("GET", "/api/start-logical", s.startLogical, true)
	route("GET", "/api/diagnose", s.diagnose, true)
	route("GET", "/api/check-task", s.checkTask, true)
	route("GET", "/api/stop-task", s.stopTask, true)
	route("GET", "/api/resume-task", s.resumeTask, true)
	route("GET", "/api/create-case", s.createCase, true)
	route("GET", "/api/edit-case", s.editCase, true)
	route("GET", "/api/report", s.report, true)
	route("GET", "/api/ports", s.ports, true)
	route("GET", "/api/set-port-mode", s.setPortMode, true)
	route("GET", "/api/tasks", s.listTasks, true)
	route("GET", "/api/cases", s.listCases, true)
	route("GET", "/api/events", s.events, true)
	route("GET POST DELETE", "/api/settings", s.settings, true)
	if _, ok := s.board.(Plugger); ok {
		route("GET", "/api/sim/plug", s.simPlug, true)
		route("GET", "/api/sim/unplug", s.simUnplug, true)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such endpoint: " + r.URL.Path})
	})
	return s.recoverer(mux)
}

// recoverer turns a panic into a 500 without a stack trace in the answer.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("panic in handler", "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error; see the appliance log"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// ---- authentication

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func (s *Server) authorize(r *http.Request) error {
	if !s.cfg.UserManagement {
		return nil
	}
	tok := r.URL.Query().Get("token")
	if a := r.Header.Get("Authorization"); tok == "" && strings.HasPrefix(a, "Bearer ") {
		tok = strings.TrimSpace(strings.TrimPrefix(a, "Bearer "))
	}
	if tok == "" {
		return &apiError{http.StatusUnauthorized, "token missing: log in with POST /login and pass token= or Authorization: Bearer"}
	}
	if _, err := s.st.TouchToken(tokenHash(tok), s.cfg.TokenTTL, time.Now()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &apiError{http.StatusUnauthorized, "token unknown or expired: log in again with POST /login"}
		}
		return err
	}
	return nil
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
	var user, pass string
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var body struct {
			Username string          `json:"username"`
			Password json.RawMessage `json:"password"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body); err != nil {
			return bad("body is not valid JSON: send {\"username\": \"...\", \"password\": \"...\"}")
		}
		user = body.Username
		var ps string
		if err := json.Unmarshal(body.Password, &ps); err == nil {
			pass = ps
		} else {
			var num json.Number
			dec := json.NewDecoder(strings.NewReader(string(body.Password)))
			dec.UseNumber()
			if dec.Decode(&num) == nil {
				pass = num.String()
			}
		}
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
		if err := r.ParseForm(); err != nil {
			return bad("cannot read the form body")
		}
		user, pass = r.PostForm.Get("username"), r.PostForm.Get("password")
	}
	if user == "" || pass == "" {
		return bad("username and password are required")
	}
	// Slow down repeated failures from one address.
	addr := clientAddr(r)
	s.mu.Lock()
	n := s.fails[addr]
	s.mu.Unlock()
	if n > 3 {
		time.Sleep(min(time.Duration(n-3)*500*time.Millisecond, 5*time.Second))
	}
	hash := s.dummy
	u, err := s.st.User(user)
	if err == nil {
		hash = u.PasswordHash
	}
	okPass := bcrypt.CompareHashAndPassword(hash, []byte(pass)) == nil
	if err != nil || !okPass {
		s.mu.Lock()
		s.fails[addr]++
		s.mu.Unlock()
		s.log.Warn("failed login", "user", user, "addr", addr)
		_ = s.st.Audit(store.AuditEntry{Time: time.Now(), User: user, Action: "login-failed", Detail: addr})
		return &apiError{http.StatusUnauthorized, "wrong user name or password"}
	}
	s.mu.Lock()
	delete(s.fails, addr)
	s.mu.Unlock()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	tok := hex.EncodeToString(raw)
	now := time.Now()
	if err := s.st.PutToken(tokenHash(tok), &store.Token{User: user, Created: now, LastUsed: now}); err != nil {
		return err
	}
	_ = s.st.Audit(store.AuditEntry{Time: now, User: user, Action: "login", Detail: addr})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err = w.Write([]byte(tok))
	return err
}

// AddUser creates or replaces a user with a bcrypt hash of the password.
func AddUser(st *store.Store, name, password string) error {
	if name == "" || strings.ContainsAny(name, " \t\n") {
		return fmt.Errorf("user name %q: must be one word", name)
	}
	if len(password) < 4 {
		return fmt.Errorf("password too short (at least 4 characters)")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	return st.PutUser(&store.User{Name: name, PasswordHash: h, Created: time.Now()})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.cfg.Version})
	return nil
}

// ---- parameters

// query parses the URL query; '+' and %20 both decode to a space.
func query(r *http.Request) url.Values { return r.URL.Query() }

func boolParam(q url.Values, name string, def bool) (bool, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, bad("%s=%q: accepted values are true or false", name, v)
}

func required(q url.Values, name string) (string, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return "", bad("%s is required", name)
	}
	return v, nil
}
