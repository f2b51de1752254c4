package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/evidenced/evidenced/daemon/auth"
	"github.com/evidenced/evidenced/store"
)

// access is what a route asks of its caller.
type access int

const (
	public   access = iota // anyone, no token
	examiner               // any logged-in user
	admin                  // admins only
)

// route is one endpoint: the methods it answers, the role it needs (byMethod overrides need for
// some methods), and whether its calls are audited (every state-changing call: any method but
// GET/HEAD, and GET routes marked audit).
type route struct {
	methods  string
	path     string
	h        handler
	need     access
	byMethod map[string]access
	audit    bool
}

func (rt route) needs(method string) access {
	if a, ok := rt.byMethod[method]; ok {
		return a
	}
	return rt.need
}

// audited says whether a call changes state.
func (rt route) audited(method string) bool {
	switch {
	case !rt.audit:
		return false
	case rt.methods == http.MethodGet:
		return true // the TaskForce API changes state with GET
	}
	return method != http.MethodGet && method != http.MethodHead
}

// identity is the caller of a request.
type identity struct {
	User  string // "" without user management
	Role  auth.Role
	token string // the session's token; "" without one
}

type ctxKey int

const (
	identityKey ctxKey = iota
	noteKey
)

func who(r *http.Request) identity {
	id, _ := r.Context().Value(identityKey).(identity)
	return id
}

// auditNote is what a handler adds to its request's audit record.
type auditNote struct {
	task   string
	params map[string]string
}

// note returns the request's audit note (a throwaway one when the request is not audited, which
// handlers write to as to any other).
func note(r *http.Request) *auditNote {
	if n, ok := r.Context().Value(noteKey).(*auditNote); ok {
		return n
	}
	return &auditNote{params: map[string]string{}}
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (Flush for the event stream).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// guard wraps a route's handler: method check, authentication, role, and the audit record.
func (s *Server) guard(rt route, authn func(*http.Request) (identity, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		allowed := strings.Fields(rt.methods)
		if !slices.Contains(allowed, r.Method) && !(slices.Contains(allowed, http.MethodGet) && r.Method == http.MethodHead) {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": rt.path + " answers " + strings.Join(allowed, ", ") + " only"})
			return
		}
		need := rt.needs(r.Method)
		var id identity
		if need != public {
			var err error
			if id, err = authn(r); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		ctx := context.WithValue(r.Context(), identityKey, id)
		var n *auditNote
		if rt.audited(r.Method) {
			n = &auditNote{params: map[string]string{}}
			ctx = context.WithValue(ctx, noteKey, n)
		}
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}
		var err error
		if need == admin && id.Role != auth.Admin {
			err = &apiError{http.StatusForbidden, fmt.Sprintf("%s %s needs the admin role; %s is an examiner", r.Method, rt.path, id.User)}
		} else {
			err = rt.h(sw, r)
		}
		if err != nil {
			s.fail(sw, r, err)
		}
		if n != nil {
			s.auditRequest(r, rt.path, n, sw.code, err)
		}
	}
}

// auditParams are a request's parameters as the audit trail keeps them: what params keeps (known
// secrets out, secret mount options stripped), and, whatever a caller invents, any parameter
// named like a secret masked.
func auditParams(q url.Values) map[string]string {
	p := params(q)
	for k := range p {
		lk := strings.ToLower(k)
		if strings.Contains(lk, "pwd") || strings.Contains(lk, "pass") || strings.Contains(lk, "token") || strings.Contains(lk, "secret") {
			p[k] = "***"
		}
	}
	return p
}

// auditRequest writes the record of one state-changing call.
func (s *Server) auditRequest(r *http.Request, path string, n *auditNote, code int, err error) {
	p := auditParams(r.URL.Query())
	for k, v := range n.params {
		p[k] = v
	}
	result := fmt.Sprintf("%d %s", code, http.StatusText(code))
	if err != nil {
		_, msg := status(err)
		result += ": " + msg
	}
	task := n.task
	if task == "" {
		task = p["taskKey"]
	}
	if len(p) == 0 {
		p = nil
	}
	action := strings.TrimPrefix(path, "/api/")
	if r.Method != http.MethodGet {
		action = strings.ToLower(r.Method) + " " + action
	}
	s.audit(store.AuditRecord{Time: time.Now(), User: who(r).User, Addr: clientAddr(r), Action: action,
		Params: p, Result: result, Task: task})
}

// audit appends a record to the trail; a failure is logged (the action itself has happened).
func (s *Server) audit(rec store.AuditRecord) {
	if err := s.st.AppendAudit(&rec); err != nil {
		s.log.Error("audit trail", "action", rec.Action, "err", err)
	}
}
