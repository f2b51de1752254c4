package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/store"
)

// run runs the built binary to completion and returns its exit code and output.
func run(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, builtBinary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("evidenced %v did not end: %s", args, out)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// A damaged state file stops the daemon with one sentence and is kept as it was; `store backup`
// taken while the daemon runs restores it; `store check` tells good from damaged.
func TestDamagedStoreRefusedAndRestoredFromBackup(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	db := filepath.Join(data, "evidenced.db")
	src := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(src, bytes.Repeat([]byte{7}, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	board := writeBoard(t, dir, `{"name": "SATA1", "mode": "source", "drive": {"path": "`+src+`", "model": "M", "serial": "S1"}}`)
	if code, out := run(t, "secret-pw\n", "user", "add", "examiner", "--data-dir", data); code != 0 {
		t.Fatalf("user add: %d %s", code, out)
	}
	d := startDaemon(t, "--data-dir", data, "--board", board, "--spin-up", "1ms")

	// While the daemon holds the file: check and backup go through its local socket.
	if code, out := run(t, "", "store", "check", "--data-dir", data); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("store check while running: %d %s", code, out)
	}
	backup := filepath.Join(dir, "backup.db")
	if code, out := run(t, "", "store", "backup", backup, "--data-dir", data); code != 0 {
		t.Fatalf("store backup while running: %d %s", code, out)
	}
	d.stop()
	if err := store.Check(backup); err != nil {
		t.Fatalf("backup does not check: %v", err)
	}
	good, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"half", good[:len(good)/2]},
		{"garbage", append(bytes.Clone(good[:2*4096]), bytes.Repeat([]byte{0xA5}, len(good)-2*4096)...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(db, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			code, out := run(t, "", "--listen", freePort(t), "--data-dir", data, "--board", board)
			out = strings.TrimSpace(out)
			if code == 0 || strings.Count(out, "\n") != 0 || !strings.Contains(out, db) || !strings.Contains(out, "restore a backup") {
				t.Fatalf("daemon on a damaged store: exit %d, want one sentence naming %s:\n%s", code, db, out)
			}
			after, err := os.ReadFile(db)
			if err != nil || !bytes.Equal(after, c.data) {
				t.Fatalf("the damaged file was changed (err %v)", err)
			}
			if code, out := run(t, "", "store", "check", "--data-dir", data); code == 0 || !strings.Contains(out, "damaged") {
				t.Fatalf("store check of a damaged file: %d %s", code, out)
			}
			if code, _ := run(t, "", "store", "backup", filepath.Join(dir, "b2.db"), "--data-dir", data); code == 0 {
				t.Fatal("store backup of a damaged file succeeded")
			}
		})
	}

	// Restoring the backup brings the user back.
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := run(t, "", "store", "check", "--data-dir", data); code != 0 {
		t.Fatalf("store check of the restored file: %d %s", code, out)
	}
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.User("examiner"); err != nil {
		t.Fatalf("restored store lacks the user: %v", err)
	}
}
