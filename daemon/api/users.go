package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/evidenced/evidenced/daemon/auth"
	"github.com/evidenced/evidenced/store"
)

// userBody is the JSON a POST or PATCH of /api/users sends.
type userBody struct {
	Name     string  `json:"name"`
	Password *string `json:"password"`
	Role     *string `json:"role"`
}

func readUserBody(r *http.Request) (userBody, error) {
	var b userBody
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		return b, bad("reading the request body: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return b, bad("body: %v; send JSON like {\"name\": \"...\", \"password\": \"...\", \"role\": \"examiner\"}", err)
	}
	return b, nil
}

// users manages accounts: GET lists, POST creates ({name, password, role}), PATCH ?name= sets
// the password and/or role, DELETE ?name= removes. An examiner may only PATCH their own password.
func (s *Server) users(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodPost:
		return s.addUser(w, r)
	case http.MethodPatch:
		return s.changeUser(w, r)
	case http.MethodDelete:
		return s.removeUser(w, r)
	}
	list, err := auth.Users(s.st)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": list})
	return nil
}

// addUser is POST /api/users: a new account, examiner unless the body names a role.
func (s *Server) addUser(w http.ResponseWriter, r *http.Request) error {
	n := note(r)
	b, err := readUserBody(r)
	if err != nil {
		return err
	}
	n.params["name"] = b.Name
	role := auth.Examiner
	if b.Role != nil {
		if role, err = auth.ParseRole(*b.Role); err != nil {
			return bad("%v", err)
		}
	}
	n.params["role"] = string(role)
	if b.Password == nil {
		return bad("password is required")
	}
	u, err := auth.AddUser(s.st, b.Name, *b.Password, role)
	if errors.Is(err, store.ErrExists) {
		return conflict("user %q exists; change it with PATCH /api/users?name=%s", b.Name, b.Name)
	} else if err != nil {
		return userErr(err)
	}
	writeJSON(w, http.StatusCreated, u)
	return nil
}

// changeUser is PATCH /api/users?name=: a new password ends the user's sessions, a new role
// applies to them at once.
func (s *Server) changeUser(w http.ResponseWriter, r *http.Request) error {
	n := note(r)
	name, err := required(r.URL.Query(), "name")
	if err != nil {
		return err
	}
	b, err := readUserBody(r)
	if err != nil {
		return err
	}
	if err := checkUserChange(who(r), name, b); err != nil {
		return err
	}
	var role auth.Role
	if b.Role != nil {
		if role, err = auth.ParseRole(*b.Role); err != nil {
			return bad("%v", err)
		}
		n.params["role"] = string(role)
	}
	if b.Password != nil {
		n.params["password"] = "changed"
		if err := auth.SetPassword(s.st, name, *b.Password); err != nil {
			return userErr(err)
		}
		s.dropSessions(name)
	}
	if b.Role != nil {
		if err := auth.SetRole(s.st, name, role); err != nil {
			return userErr(err)
		}
		s.setSessionsRole(name, role)
	}
	u, err := s.st.User(name)
	if err != nil {
		return userErr(err)
	}
	writeJSON(w, http.StatusOK, auth.Info(u))
	return nil
}

// checkUserChange refuses, before anything changes, a PATCH of user name by id that names another
// user in its body, that an examiner makes of anything but their own password, or that changes
// nothing.
func checkUserChange(id identity, name string, b userBody) error {
	switch {
	case b.Name != "" && b.Name != name:
		return bad("the body names %q but ?name= is %q", b.Name, name)
	case id.Role != auth.Admin && (name != id.User || b.Role != nil):
		return &apiError{http.StatusForbidden, "an examiner may change only their own password"}
	case b.Password == nil && b.Role == nil:
		return bad("nothing to change: give password and/or role")
	}
	return nil
}

// removeUser is DELETE /api/users?name=: the account and its sessions go.
func (s *Server) removeUser(w http.ResponseWriter, r *http.Request) error {
	name, err := required(r.URL.Query(), "name")
	if err != nil {
		return err
	}
	if err := auth.RemoveUser(s.st, name); err != nil {
		return userErr(err)
	}
	s.dropSessions(name)
	writeJSON(w, http.StatusOK, map[string]string{"removed": name})
	return nil
}

// userErr maps account errors to statuses: a missing user 404, the last admin 409, a bad name
// or password 400.
func userErr(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return err // "user %q does not exist", from the store
	case errors.Is(err, auth.ErrLastAdmin):
		return conflict("%v", err)
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return err
	}
	return bad("%v", err)
}

// auditPage pages through the audit trail, oldest first: ?after=SEQ&limit=N (default 100, at
// most 1000); the answer's "next" is the after= of the next page (0 at the end).
func (s *Server) auditPage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var after uint64
	limit := 100
	if v := strings.TrimSpace(q.Get("after")); v != "" {
		if _, err := fmt.Sscan(v, &after); err != nil {
			return bad("after=%q: a record number", v)
		}
	}
	if v := strings.TrimSpace(q.Get("limit")); v != "" {
		if _, err := fmt.Sscan(v, &limit); err != nil || limit < 1 || limit > 1000 {
			return bad("limit=%q: 1 to 1000", v)
		}
	}
	recs, next, err := s.st.AuditPage(after, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": recs, "next": next})
	return nil
}

// auditVerify checks the chain and names the first broken record.
func (s *Server) auditVerify(w http.ResponseWriter, r *http.Request) error {
	n, brk, err := s.st.VerifyAudit()
	if err != nil {
		return err
	}
	out := map[string]any{"ok": brk == nil, "records": n}
	if brk != nil {
		out["broken"] = brk
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
