package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/daemon/auth"
)

// TestCheckUserChange: the refusals of PATCH /api/users that TestUsersAPI does not reach, each
// with its status and message, and the changes let through.
func TestCheckUserChange(t *testing.T) {
	pw, role := "new-Passw0rd1", "admin"
	admin := identity{User: "boss", Role: auth.Admin}
	ex := identity{User: "ex1", Role: auth.Examiner}
	for _, c := range []struct {
		name string
		id   identity
		user string
		b    userBody
		code int // 0: allowed
		want string
	}{
		{"admin sets a role", admin, "ex1", userBody{Role: &role}, 0, ""},
		{"examiner sets own password", ex, "ex1", userBody{Name: "ex1", Password: &pw}, 0, ""},
		{"body names another user", admin, "ex1", userBody{Name: "ex2", Password: &pw}, 400, `the body names "ex2" but ?name= is "ex1"`},
		{"examiner sets another's password", ex, "ex2", userBody{Password: &pw}, 403, "only their own password"},
		{"examiner sets own role", ex, "ex1", userBody{Role: &role}, 403, "only their own password"},
		{"nothing to change", admin, "ex1", userBody{Name: "ex1"}, 400, "nothing to change"},
	} {
		err := checkUserChange(c.id, c.user, c.b)
		var ae *apiError
		switch {
		case c.code == 0 && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.code != 0 && (!errors.As(err, &ae) || ae.status != c.code || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %d %q", c.name, err, c.code, c.want)
		}
	}
}

// TestNoteOutsideAudit: a handler's audit note on a request that is not audited takes parameters
// like any other (it used to be a nil map, and writing to it panicked).
func TestNoteOutsideAudit(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/api/users", nil)
	n := note(r)
	n.params["name"] = "x"
	if n.params["name"] != "x" {
		t.Fatal("the throwaway note lost its parameter")
	}
}
