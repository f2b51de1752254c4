package api

import (
	"log/slog"
	"net/http"

	"github.com/evidenced/evidenced/daemon/auth"
	"github.com/evidenced/evidenced/store"
)

// LocalUser is who the audit trail names for calls through the local socket (root on the
// appliance) and for the command line working on the store while the daemon is stopped.
const (
	LocalUser   = "root@socket"
	OfflineUser = "root@offline"
)

// localRoutes are what the command line reaches: accounts and the audit trail.
func (s *Server) localRoutes() []route {
	var out []route
	for _, rt := range s.routes() {
		switch rt.path {
		case "/api/users", "/api/audit", "/api/audit/verify":
			out = append(out, rt)
		}
	}
	return out
}

// LocalHandler serves the command line over the daemon's Unix socket: whoever can open the
// socket (root; the daemon checks the peer) is an admin named LocalUser.
func (s *Server) LocalHandler() http.Handler { return s.localHandler(LocalUser) }

func (s *Server) localHandler(user string) http.Handler {
	mux := http.NewServeMux()
	local := func(r *http.Request) (identity, error) { return identity{User: user, Role: auth.Admin}, nil }
	for _, rt := range s.localRoutes() {
		mux.HandleFunc(rt.path, s.guard(rt, local))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such endpoint on the local socket: " + r.URL.Path})
	})
	return s.recoverer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.RemoteAddr = user // the audit trail's address
		mux.ServeHTTP(w, r)
	}))
}

// OfflineHandler serves the same calls straight on a store while the daemon is stopped, so the
// command line behaves the same either way (records in the audit trail included). There are no
// live sessions to end: the store removes a user's sessions with the change itself.
func OfflineHandler(st *store.Store, log *slog.Logger) http.Handler {
	s := &Server{st: st, log: log}
	return s.localHandler(OfflineUser)
}

// dropSessions ends a user's live sessions (none offline).
func (s *Server) dropSessions(user string) {
	if s.sessions != nil {
		s.sessions.DropUser(user)
	}
}

// setSessionsRole changes the role of a user's live sessions (none offline).
func (s *Server) setSessionsRole(user string, role auth.Role) {
	if s.sessions != nil {
		s.sessions.SetRole(user, role)
	}
}
