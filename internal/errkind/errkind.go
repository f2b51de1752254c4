// Package errkind holds the kinds of failure callers act on (a bad request, a missing record, a
// clash with the current state, a busy port) and the error type that carries one with its
// message. The kinds and what each means are documented here, in one place; the HTTP API turns a
// kind into a status (daemon/api) without reading the error's text.
package errkind

import (
	"errors"
	"fmt"
)

// Kind is a kind of failure. A Kind is itself an error, so packages keep their sentinels as
// Kind values (tasks.ErrBusy = errkind.Busy, store.ErrNotFound = errkind.NotFound), and
// errors.Is(err, sentinel) holds for every error of that kind, bare or carried by an Error.
type Kind uint8

// The kinds, with the HTTP status the API answers them with.
const (
	// BadRequest: the request itself is wrong, e.g. a target folder that cannot be used. 400.
	BadRequest Kind = iota + 1
	// NotFound: the task, port, record, preset or user named does not exist. 404.
	NotFound
	// Exists: a record that must be unique already exists (a case ID, a user name). 409.
	Exists
	// Conflict: the request clashes with the state, e.g. a task that is not paused cannot resume,
	// or starting would overwrite an image. 409.
	Conflict
	// Busy: the port is claimed by another task. 409.
	Busy
)

// Error is the kind's bare text, as the sentinels have always read.
func (k Kind) Error() string {
	switch k {
	case BadRequest:
		return "bad request"
	case NotFound:
		return "not found"
	case Exists:
		return "already exists"
	case Conflict:
		return "conflict"
	case Busy:
		return "busy"
	}
	return fmt.Sprintf("error kind %d", uint8(k))
}

// Error is an error of a kind. Its text is the message alone, fit to show a user as it is.
type Error struct {
	Kind Kind
	err  error // the message, wrapping what %w named
}

// New returns an error of kind k; the format is fmt.Errorf's, so %w keeps a cause.
func New(k Kind, format string, a ...any) error {
	return &Error{Kind: k, err: fmt.Errorf(format, a...)}
}

func (e *Error) Error() string { return e.err.Error() }

// Unwrap gives the message's wrapped cause, if any.
func (e *Error) Unwrap() error { return e.err }

// Is makes errors.Is(err, kind) hold for an Error of that kind.
func (e *Error) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.Kind
}

// Of returns the kind of err: that of the outermost Error in its chain, else that of a bare Kind
// sentinel in it; 0 when err has none.
func Of(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	var k Kind
	if errors.As(err, &k) {
		return k
	}
	return 0
}
