package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/evidenced/evidenced/daemon/api"
	"github.com/evidenced/evidenced/daemon/transport"
	"github.com/evidenced/evidenced/store"
)

const userUsage = `usage: evidenced user COMMAND [--data-dir DIR]
  list                      list the users and their roles
  add NAME [--role ROLE]    create a user (role examiner unless --role admin); password on stdin
  passwd NAME               set a user's password (ends their sessions); password on stdin
  role NAME ROLE            set a user's role: admin or examiner
  remove NAME               remove a user and end their sessions`

// splitArgs separates the positional arguments before the first flag from the flags.
func splitArgs(args []string) (pos, flags []string) {
	for i, a := range args {
		if strings.HasPrefix(a, "-") {
			return args[:i], args[i:]
		}
	}
	return args, nil
}

func userCmd(args []string) error {
	if len(args) == 0 {
		return errors.New(userUsage)
	}
	pos, rest := splitArgs(args[1:])
	fs := flag.NewFlagSet("user "+args[0], flag.ContinueOnError)
	dataDir := fs.String("data-dir", "/var/lib/evidenced", "state directory")
	role := fs.String("role", "examiner", "role of a new user: admin or examiner")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	need := map[string]int{"list": 0, "add": 1, "passwd": 1, "role": 2, "remove": 1}
	n, ok := need[args[0]]
	if !ok || len(pos) != n || fs.NArg() != 0 {
		return errors.New(userUsage)
	}
	var (
		method = http.MethodGet
		query  = url.Values{}
		body   any
	)
	switch args[0] {
	case "add":
		pw, err := readPassword(fmt.Sprintf("Password for %s: ", pos[0]))
		if err != nil {
			return err
		}
		method, body = http.MethodPost, map[string]string{"name": pos[0], "password": pw, "role": *role}
	case "passwd":
		pw, err := readPassword(fmt.Sprintf("New password for %s: ", pos[0]))
		if err != nil {
			return err
		}
		method, body = http.MethodPatch, map[string]string{"password": pw}
		query.Set("name", pos[0])
	case "role":
		method, body = http.MethodPatch, map[string]string{"role": pos[1]}
		query.Set("name", pos[0])
	case "remove":
		method = http.MethodDelete
		query.Set("name", pos[0])
	}
	out, err := local(*dataDir, method, "/api/users", query, body)
	if err != nil {
		return err
	}
	if args[0] == "list" {
		var l struct {
			Users []struct{ Name, Role string } `json:"users"`
		}
		if err := json.Unmarshal(out, &l); err != nil {
			return fmt.Errorf("answer: %w", err)
		}
		for _, u := range l.Users {
			fmt.Printf("%-20s %s\n", u.Name, u.Role)
		}
		return nil
	}
	fmt.Fprintf(os.Stderr, "user %s: %s done\n", pos[0], args[0])
	return nil
}

func auditCmd(args []string) error {
	const usage = "usage: evidenced audit verify|list [--after N] [--data-dir DIR]"
	if len(args) == 0 || (args[0] != "verify" && args[0] != "list") {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "/var/lib/evidenced", "state directory")
	after := fs.Uint64("after", 0, "list: records after this number")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if args[0] == "list" {
		out, err := local(*dataDir, http.MethodGet, "/api/audit", url.Values{"after": {fmt.Sprint(*after)}, "limit": {"1000"}}, nil)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(out)
		return err
	}
	out, err := local(*dataDir, http.MethodGet, "/api/audit/verify", nil, nil)
	if err != nil {
		return err
	}
	var v struct {
		OK      bool              `json:"ok"`
		Records int               `json:"records"`
		Broken  *store.AuditBreak `json:"broken"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	if !v.OK && v.Broken != nil {
		return fmt.Errorf("audit trail broken at record %d: %s (%d records before it hold)", v.Broken.Seq, v.Broken.Reason, v.Records)
	}
	fmt.Printf("audit trail intact: %d records\n", v.Records)
	return nil
}

func tlsCmd(args []string) error {
	if len(args) == 0 || args[0] != "fingerprint" {
		return errors.New("usage: evidenced tls fingerprint [--data-dir DIR | --tls-cert FILE]")
	}
	fs := flag.NewFlagSet("tls fingerprint", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "/var/lib/evidenced", "state directory")
	cert := fs.String("tls-cert", "", "certificate file (default: the one made in the data folder)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *cert == "" {
		*cert = filepath.Join(*dataDir, transport.CertFile)
	}
	fp, err := transport.ReadFingerprint(*cert)
	if err != nil {
		return err
	}
	fmt.Println("SHA256 " + fp)
	return nil
}

// local calls the daemon through its socket, or, when no daemon listens there, the same handler
// straight on the store. It returns the answer's body, or its error message as an error.
func local(dataDir, method, path string, q url.Values, body any) ([]byte, error) {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	newReq := func() *http.Request {
		req, _ := http.NewRequest(method, "http://evidenced"+path+"?"+q.Encode(), bytes.NewReader(data))
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req
	}
	sock := filepath.Join(dataDir, SocketName)
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	resp, err := client.Do(newReq())
	var code int
	var out []byte
	switch {
	case err == nil:
		defer resp.Body.Close()
		code = resp.StatusCode
		if out, err = io.ReadAll(resp.Body); err != nil {
			return nil, fmt.Errorf("daemon socket: %w", err)
		}
	case errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED):
		// No daemon: work on the store itself.
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		st, err := store.Open(filepath.Join(dataDir, "evidenced.db"))
		if err != nil {
			return nil, fmt.Errorf("no daemon answers on %s and the store cannot be opened: %w", sock, err)
		}
		defer st.Close()
		rec := httptest.NewRecorder()
		api.OfflineHandler(st, slog.New(slog.NewTextHandler(os.Stderr, nil))).ServeHTTP(rec, newReq())
		code, out = rec.Code, rec.Body.Bytes()
	default:
		return nil, fmt.Errorf("daemon socket %s: %w", sock, err)
	}
	if code >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(out, &e) == nil && e.Error != "" {
			return nil, errors.New(e.Error)
		}
		return nil, fmt.Errorf("%d %s", code, strings.TrimSpace(string(out)))
	}
	return out, nil
}
