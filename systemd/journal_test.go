package systemd

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
)

type entry struct {
	msg  string
	pri  journal.Priority
	vars map[string]string
}

func TestJournalHandlerFields(t *testing.T) {
	var got []entry
	h := NewJournalHandler(slog.LevelInfo, func(m string, p journal.Priority, v map[string]string) error {
		got = append(got, entry{m, p, v})
		return nil
	})
	log := slog.New(h).With("task", "imaging_1_X_S_EVD0001_u")
	log.Debug("not sent")
	log.Warn("read error", "port", "SATA1", "serial", "S1AX", "lba", 42, slog.Group("target", "path", "/x"))
	if len(got) != 1 {
		t.Fatalf("%d entries, want 1 (debug is below the level)", len(got))
	}
	e := got[0]
	want := map[string]string{"TASK_KEY": "imaging_1_X_S_EVD0001_u", "PORT": "SATA1", "SERIAL": "S1AX", "LBA": "42", "TARGET_PATH": "/x"}
	for k, v := range want {
		if e.vars[k] != v {
			t.Errorf("field %s = %q, want %q (all: %v)", k, e.vars[k], v, e.vars)
		}
	}
	if e.pri != journal.PriWarning {
		t.Errorf("priority %d, want %d", e.pri, journal.PriWarning)
	}
	if !strings.HasPrefix(e.msg, "read error ") || !strings.Contains(e.msg, `port="SATA1"`) {
		t.Errorf("message %q lacks the text form of the attributes", e.msg)
	}
}

func TestFieldName(t *testing.T) {
	for in, want := range map[string]string{"task": "TASK_KEY", "bytes-done": "BYTES_DONE", "_x": "X", "9a": "A", "message": "ATTR_MESSAGE", "": "ATTR_"} {
		if got := FieldName(in); got != want {
			t.Errorf("FieldName(%q) = %q, want %q", in, got, want)
		}
	}
}
