package systemd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
)

// Logger returns the daemon's logger: structured journal entries when stderr is connected to
// journald (run by systemd), text on w otherwise.
func Logger(w io.Writer, level slog.Level) *slog.Logger {
	if ok, err := journal.StderrIsJournalStream(); err == nil && ok && journal.Enabled() {
		return slog.New(NewJournalHandler(level, journal.Send))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// fieldNames maps the daemon's attribute keys to the journal fields examiners query
// (journalctl -u evidenced TASK_KEY=...).
var fieldNames = map[string]string{"task": "TASK_KEY", "port": "PORT", "serial": "SERIAL", "model": "MODEL"}

// SendFunc sends one journal entry (journal.Send).
type SendFunc func(message string, priority journal.Priority, vars map[string]string) error

// JournalHandler is a slog.Handler writing journal entries: the message with its attributes as
// text (for journalctl's plain view) and every attribute as a field of its own.
type JournalHandler struct {
	level  slog.Level
	send   SendFunc
	attrs  []slog.Attr
	groups []string
	mu     *sync.Mutex
}

// NewJournalHandler returns a handler that sends entries of level and above with send.
func NewJournalHandler(level slog.Level, send SendFunc) *JournalHandler {
	return &JournalHandler{level: level, send: send, mu: &sync.Mutex{}}
}

// Enabled reports whether the level is logged.
func (h *JournalHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

// WithAttrs returns a handler whose entries carry attrs too.
func (h *JournalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	prefix := strings.Join(h.groups, ".")
	for _, a := range attrs {
		if prefix != "" {
			a.Key = prefix + "." + a.Key
		}
		n.attrs = append(slices.Clip(n.attrs), a)
	}
	return &n
}

// WithGroup returns a handler that puts later attributes in group name.
func (h *JournalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.groups = append(slices.Clip(n.groups), name)
	return &n
}

// Handle sends one entry.
func (h *JournalHandler) Handle(_ context.Context, r slog.Record) error {
	vars := map[string]string{}
	var text strings.Builder
	text.WriteString(r.Message)
	add := func(key string, v slog.Value) {
		v = v.Resolve()
		if v.Kind() == slog.KindGroup {
			return
		}
		s := v.String()
		fmt.Fprintf(&text, " %s=%q", key, s)
		vars[FieldName(key)] = s
	}
	for _, a := range h.attrs {
		add(a.Key, a.Value)
	}
	prefix := strings.Join(h.groups, ".")
	r.Attrs(func(a slog.Attr) bool {
		var walk func(key string, v slog.Value)
		walk = func(key string, v slog.Value) {
			v = v.Resolve()
			if v.Kind() == slog.KindGroup {
				for _, g := range v.Group() {
					walk(key+"."+g.Key, g.Value)
				}
				return
			}
			add(key, v)
		}
		key := a.Key
		if prefix != "" {
			key = prefix + "." + key
		}
		walk(key, a.Value)
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.send(text.String(), priority(r.Level), vars)
}

// FieldName turns an attribute key into a journal field name: the names examiners query for the
// well-known keys, else upper case with every other character as '_' (journal field names are
// A-Z, 0-9 and '_', and must not start with '_' or a digit).
func FieldName(key string) string {
	if f, ok := fieldNames[key]; ok {
		return f
	}
	b := []byte(strings.ToUpper(key))
	for i, c := range b {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			b[i] = '_'
		}
	}
	s := strings.TrimLeft(string(b), "_0123456789")
	if s == "" || s == "MESSAGE" || s == "PRIORITY" {
		s = "ATTR_" + s
	}
	return s
}

func priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	default:
		return journal.PriDebug
	}
}
