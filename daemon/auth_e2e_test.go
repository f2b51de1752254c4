package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/daemon/transport"
	"github.com/evidenced/evidenced/internal/testenv"
	"github.com/evidenced/evidenced/store"
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

// cli runs the built binary with args and stdin; it returns the combined output.
func cli(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	c := exec.Command(builtBinary, args...)
	c.Stdin = strings.NewReader(stdin)
	out, err := c.CombinedOutput()
	return string(out), err
}

func mustCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := cli(t, stdin, args...)
	if err != nil {
		t.Fatalf("evidenced %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// User management end to end: no default password (the first start needs one), the first admin
// from a file, users managed by the CLI through the daemon's socket while it runs and on the
// store while it is stopped, tokens that expire, no secret in a log or the store, and an audit
// trail whose first broken record `evidenced audit verify` names.
func TestUserManagement(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	// No admin and no password given: the daemon refuses to start rather than use a default.
	out, err := cli(t, "", "--data-dir", data, "--listen", "127.0.0.1:0", "--user-management")
	if err == nil || !strings.Contains(out, "--admin-password-file") {
		t.Fatalf("first start without a password: %v %s", err, out)
	}
	const adminPw = "first-Admin-pw"
	pwFile := filepath.Join(dir, "admin.pw")
	if err := os.WriteFile(pwFile, []byte(adminPw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--data-dir", data, "--board", "sim", "--user-management", "--token-ttl", "2s",
		"--spin-up", "50ms", "--admin-password-file", pwFile)
	if st, err := os.Stat(filepath.Join(data, SocketName)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", st, err)
	}
	// The CLI goes through the socket while the daemon runs (the store is locked by the daemon).
	const password = "s3cret-Passw0rd"
	mustCLI(t, password+"\n", "user", "add", "examiner", "--data-dir", data)
	mustCLI(t, "918273645\n", "user", "add", "lead", "--role", "admin", "--data-dir", data)
	if out := mustCLI(t, "", "user", "list", "--data-dir", data); !strings.Contains(out, "examiner             examiner") ||
		!strings.Contains(out, "lead                 admin") || !strings.Contains(out, "admin                admin") {
		t.Fatalf("user list:\n%s", out)
	}
	if out, err := cli(t, "", "user", "remove", "nobody", "--data-dir", data); err == nil || !strings.Contains(out, `user "nobody" does not exist`) {
		t.Fatalf("remove unknown: %v %s", err, out)
	}

	if code, _ := d.get("/api/ports"); code != 401 {
		t.Fatalf("no token: %d, want 401", code)
	}
	if code, _ := d.get("/api/ports?token=" + strings.Repeat("ab", 32)); code != 401 {
		t.Fatalf("unknown token: %d, want 401", code)
	}
	if code, _ := login(t, d, `{"username": "examiner", "password": "wrong"}`, "application/json"); code != 401 {
		t.Fatalf("bad password: %d, want 401", code)
	}
	if code, _ := login(t, d, `{"username": "admin", "password": "`+adminPw+`"}`, "application/json"); code != 200 {
		t.Fatalf("first admin: %d", code)
	}
	code, tok := login(t, d, `{"username": "examiner", "password": "`+password+`"}`, "application/json")
	if code != 200 || len(tok) != 64 || strings.Trim(tok, "0123456789abcdef") != "" {
		t.Fatalf("login: %d %q", code, tok)
	}
	// The seed's example sends the password as a number.
	if code, tok2 := login(t, d, `{"username": "lead", "password": 918273645}`, "application/json"); code != 200 || len(tok2) != 64 {
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
	req.Header.Set("Authorization", "bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("bearer token: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	// A password change through the socket ends the examiner's session at once.
	mustCLI(t, "new-Passw0rd-2\n", "user", "passwd", "examiner", "--data-dir", data)
	if code, _ := d.get("/api/ports?token=" + tok); code != 401 {
		t.Fatalf("token after password change: %d, want 401", code)
	}
	code, tok = login(t, d, `{"username": "examiner", "password": "new-Passw0rd-2"}`, "application/json")
	if code != 200 {
		t.Fatalf("login with the new password: %d", code)
	}
	// Idle past the TTL: expired.
	time.Sleep(2500 * time.Millisecond)
	if code, _ := d.get("/api/ports?token=" + tok); code != 401 {
		t.Fatalf("expired token: %d, want 401", code)
	}
	d.stop()

	// Stopped: the CLI works on the store itself, and the change is audited too.
	mustCLI(t, "", "user", "role", "examiner", "admin", "--data-dir", data)
	mustCLI(t, "", "user", "remove", "lead", "--data-dir", data)
	if out := mustCLI(t, "", "user", "list", "--data-dir", data); !strings.Contains(out, "examiner             admin") || strings.Contains(out, "lead") {
		t.Fatalf("offline list:\n%s", out)
	}
	if out := mustCLI(t, "", "audit", "verify", "--data-dir", data); !strings.Contains(out, "audit trail intact") {
		t.Fatalf("verify: %s", out)
	}
	var actions []string
	auditOut := mustCLI(t, "", "audit", "list", "--data-dir", data)
	var page struct{ Records []store.AuditRecord }
	if err := json.Unmarshal([]byte(auditOut), &page); err != nil {
		t.Fatalf("audit list: %v\n%s", err, auditOut)
	}
	for _, r := range page.Records {
		actions = append(actions, r.User+" "+r.Action+" "+r.Params["name"])
	}
	// The failed login is one burst record, written when the daemon stopped (the empty entry).
	want := "root@offline post users admin|root@socket post users examiner|root@socket post users lead|root@socket delete users nobody|" +
		"admin login |examiner login |lead login |examiner login |root@socket patch users examiner|examiner login ||" +
		"root@offline patch users examiner|root@offline delete users lead"
	got := strings.Join(actions, "|")
	if !strings.Contains(got, " login-failed ") {
		t.Fatalf("no aggregated failed-login record: %s", got)
	}
	got = strings.Replace(got, " login-failed ", "", 1)
	if got != want {
		t.Fatalf("audit trail:\n got %s\nwant %s", got, want)
	}

	// No secret in any log line or stored record.
	db, err := os.ReadFile(filepath.Join(data, "evidenced.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{password, tok, "918273645", adminPw, "new-Passw0rd-2"} {
		if bytes.Contains(d.logs.Bytes(), []byte(secret)) {
			t.Errorf("secret %q appears in the log", secret)
		}
		if bytes.Contains(db, []byte(secret)) {
			t.Errorf("secret %q appears in the store file", secret)
		}
	}

	// Change record 3 behind the trail's back: verify names it.
	bdb, err := bolt.Open(filepath.Join(data, "evidenced.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("audit-chain"))
		k := []byte{0, 0, 0, 0, 0, 0, 0, 3}
		return b.Put(k, bytes.Replace(b.Get(k), []byte(`"lead"`), []byte(`"mallory"`), 1))
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, err = cli(t, "", "audit", "verify", "--data-dir", data)
	if err == nil || !strings.Contains(out, "broken at record 3") || !strings.Contains(out, "does not match its hash") {
		t.Fatalf("verify after tampering: %v %s", err, out)
	}
}

// HTTPS: a certificate made on first start, its fingerprint in the log and from the CLI, plain
// HTTP on the same port redirected (or refused with --http-redirect=false), and the same
// certificate on the next start.
func TestTLS(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	start := func(extra ...string) (*exec.Cmd, string, *testenv.Buffer) {
		addr := freePort(t)
		c := exec.Command(builtBinary, append([]string{"--listen", addr, "--data-dir", data, "--spin-up", "50ms", "--tls"}, extra...)...)
		logs := &testenv.Buffer{}
		c.Stdout, c.Stderr = logs, logs
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		return c, addr, logs
	}
	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	waitUp := func(addr string, logs *testenv.Buffer) *http.Response {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if resp, err := insecure.Get("https://" + addr + "/healthz"); err == nil {
				return resp
			}
		}
		t.Fatalf("no HTTPS; log:\n%s", logs)
		return nil
	}
	c, addr, logs := start()
	resp := waitUp(addr, logs)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("https healthz: %d", resp.StatusCode)
	}
	peer := resp.TLS.PeerCertificates[0]
	fp := transport.Fingerprint(peer.Raw)
	if !strings.Contains(logs.String(), fp) {
		t.Fatalf("the log does not show the fingerprint %s:\n%s", fp, logs)
	}
	if out := mustCLI(t, "", "tls", "fingerprint", "--data-dir", data); strings.TrimSpace(out) != "SHA256 "+fp {
		t.Fatalf("tls fingerprint: %q, want %s", out, fp)
	}
	if peer.PublicKeyAlgorithm.String() != "ECDSA" || peer.NotAfter.Before(time.Now().AddDate(5, 0, 0)) {
		t.Fatalf("certificate: %v until %v", peer.PublicKeyAlgorithm, peer.NotAfter)
	}
	if st, err := os.Stat(filepath.Join(data, transport.KeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	// Plain HTTP on the same port: a redirect to HTTPS keeping the path and query.
	r2, err := insecure.Get("http://" + addr + "/api/ports?x=1")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusPermanentRedirect || r2.Header.Get("Location") != "https://"+addr+"/api/ports?x=1" {
		t.Fatalf("plain HTTP: %d %q", r2.StatusCode, r2.Header.Get("Location"))
	}
	c.Process.Kill()
	c.Wait()

	// Next start: the same certificate; plain HTTP refused when asked.
	_, addr, logs = start("--http-redirect=false")
	resp = waitUp(addr, logs)
	resp.Body.Close()
	if got := transport.Fingerprint(resp.TLS.PeerCertificates[0].Raw); got != fp {
		t.Fatalf("certificate changed across restarts: %s vs %s", got, fp)
	}
	if _, err := insecure.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("plain HTTP answered with --http-redirect=false")
	}
}
