package api

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/evidenced/evidenced/daemon/tasks"
	"github.com/evidenced/evidenced/internal/errkind"
	"github.com/evidenced/evidenced/store"
)

// TestStatusKinds: status answers each error kind with its status and the error's text exactly
// as the API answered it when it cut ": busy" etc. off the text (the answers must not change).
func TestStatusKinds(t *testing.T) {
	busy := errkind.New(errkind.Busy, "port %s is busy with task %s", "SATA1", "image_1_x")
	cases := []struct {
		name string
		err  error
		code int
		msg  string
	}{
		{"busy", busy, http.StatusConflict, "port SATA1 is busy with task image_1_x"},
		{"wrapped busy keeps its context", fmt.Errorf("start: %w", busy), http.StatusConflict, "start: port SATA1 is busy with task image_1_x"},
		{"bad request", errkind.New(errkind.BadRequest, "targetFolder: %v", errors.New("outside every target root")), http.StatusBadRequest, "targetFolder: outside every target root"},
		{"not found", errkind.New(errkind.NotFound, "no task with key %q", "k"), http.StatusNotFound, `no task with key "k"`},
		{"bare store not found", store.ErrNotFound, http.StatusNotFound, "not found"},
		{"exists", errkind.New(errkind.Exists, "case %q already exists", "C1"), http.StatusConflict, `case "C1" already exists`},
		{"conflict", errkind.New(errkind.Conflict, "task %s is already %s", "k", "paused"), http.StatusConflict, "task k is already paused"},
		{"api error", notFound("unknown port %s", "SATA9"), http.StatusNotFound, "unknown port SATA9"},
		{"unkinded", errors.New("disk on fire"), http.StatusInternalServerError, "internal error: disk on fire"},
	}
	for _, c := range cases {
		code, msg := status(c.err)
		if code != c.code || msg != c.msg {
			t.Errorf("%s: status(%v) = %d %q, want %d %q", c.name, c.err, code, msg, c.code, c.msg)
		}
	}
	// The old sentinels still match errors of their kind, and only those.
	if !errors.Is(fmt.Errorf("x: %w", busy), tasks.ErrBusy) || errors.Is(busy, tasks.ErrConflict) || errors.Is(busy, store.ErrNotFound) {
		t.Error("errors.Is against the tasks/store sentinels does not follow the kind")
	}
}
