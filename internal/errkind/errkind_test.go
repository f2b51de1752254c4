package errkind

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestKindAndMessage(t *testing.T) {
	cause := fmt.Errorf("open /x: %w", fs.ErrNotExist)
	err := New(NotFound, "port %s no longer exists (%w)", "SATA1", cause)
	if got, want := err.Error(), "port SATA1 no longer exists (open /x: file does not exist)"; got != want {
		t.Errorf("text %q, want %q (the message alone, no kind appended)", got, want)
	}
	if !errors.Is(err, NotFound) || errors.Is(err, Conflict) {
		t.Error("errors.Is does not follow the kind")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("the %w cause is lost")
	}
	wrapped := fmt.Errorf("resume: %w", err)
	if Of(wrapped) != NotFound {
		t.Errorf("Of(wrapped) = %v, want NotFound", Of(wrapped))
	}
	// The outermost kinded error decides.
	if k := Of(New(Conflict, "not resuming: %w", err)); k != Conflict {
		t.Errorf("Of = %v, want the outer Conflict", k)
	}
	if k := Of(fmt.Errorf("get: %w", Exists)); k != Exists {
		t.Errorf("Of(bare sentinel) = %v, want Exists", k)
	}
	if k := Of(errors.New("plain")); k != 0 {
		t.Errorf("Of(plain) = %v, want 0", k)
	}
	for k, want := range map[Kind]string{BadRequest: "bad request", NotFound: "not found", Exists: "already exists", Conflict: "conflict", Busy: "busy"} {
		if k.Error() != want {
			t.Errorf("Kind %d text %q, want %q", k, k.Error(), want)
		}
	}
}
