package main

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func login(t *testing.T, d *daemon, body, contentType string) (int, string) {
	t.Helper()
	resp, err := http.Post(d.base+"/login", contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// User management: tokens are required, expire, and no secret reaches a log or the store.
func TestUserManagement(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	const password = "s3cret-Passw0rd"
	add := exec.Command(builtBinary, "user", "add", "examiner", "--data-dir", data)
	add.Stdin = strings.NewReader(password + "\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v %s", err, out)
	}
	num := exec.Command(builtBinary, "user", "add", "admin", "--data-dir", data)
	num.Stdin = strings.NewReader("918273645\n")
	if out, err := num.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v %s", err, out)
	}
	d := startDaemon(t, "--data-dir", data, "--board", "sim", "--user-management", "--token-ttl", "2s", "--spin-up", "50ms")

	if code, _ := d.get("/api/ports"); code != 401 {
		t.Fatalf("no token: %d, want 401", code)
	}
	if code, _ := d.get("/api/ports?token=" + strings.Repeat("ab", 32)); code != 401 {
		t.Fatalf("unknown token: %d, want 401", code)
	}
	if code, _ := login(t, d, `{"username": "examiner", "password": "wrong"}`, "application/json"); code != 401 {
		t.Fatalf("bad password: %d, want 401", code)
	}
	if code, _ := login(t, d, `{"username": "nobody", "password": "x"}`, "application/json"); code != 401 {
		t.Fatalf("unknown user: %d, want 401", code)
	}
	code, tok := login(t, d, `{"username": "examiner", "password": "`+password+`"}`, "application/json")
	if code != 200 || len(tok) != 64 || strings.Trim(tok, "0123456789abcdef") != "" {
		t.Fatalf("login: %d %q", code, tok)
	}
	// The seed's example sends the password as a number.
	if code, tok2 := login(t, d, `{"username": "admin", "password": 918273645}`, "application/json"); code != 200 || len(tok2) != 64 {
		t.Fatalf("numeric password: %d %q", code, tok2)
	}
	// Form fields work too.
	if code, _ := login(t, d, "username=examiner&password="+password, "application/x-www-form-urlencoded"); code != 200 {
		t.Fatalf("form login: %d", code)
	}
	if code, body := d.get("/api/ports?token=" + tok); code != 200 {
		t.Fatalf("token: %d %s", code, body)
	}
	req, _ := http.NewRequest("GET", d.base+"/api/tasks", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("bearer token: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	// Idle past the TTL: expired.
	time.Sleep(2500 * time.Millisecond)
	if code, _ := d.get("/api/ports?token=" + tok); code != 401 {
		t.Fatalf("expired token: %d, want 401", code)
	}
	d.stop()

	// No secret in any log line or stored record.
	db, err := os.ReadFile(filepath.Join(data, "evidenced.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{password, tok, "918273645"} {
		if bytes.Contains(d.logs.Bytes(), []byte(secret)) {
			t.Errorf("secret %q appears in the log", secret)
		}
		if bytes.Contains(db, []byte(secret)) {
			t.Errorf("secret %q appears in the store file", secret)
		}
	}
}
