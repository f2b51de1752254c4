package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/evidenced/evidenced/daemon/api"
	"github.com/evidenced/evidenced/daemon/auth"
	"github.com/evidenced/evidenced/daemon/transport"
	"github.com/evidenced/evidenced/store"
)

// SocketName is the daemon's local socket in the data folder (the command line's way in).
const SocketName = "evidenced.sock"

// securityOptions are the flags of accounts, sessions and transport.
type securityOptions struct {
	adminName       string
	adminPassFile   string
	sessionLifetime time.Duration
	tls             bool
	tlsCert         string
	tlsKey          string
	httpRedirect    bool
}

func securityFlags(fs *flag.FlagSet, o *securityOptions) {
	fs.StringVar(&o.adminName, "admin-name", "admin", "name of the admin created on the first start with --user-management")
	fs.StringVar(&o.adminPassFile, "admin-password-file", "", "file holding the first admin's password (first start with --user-management; otherwise it is asked on the terminal)")
	fs.DurationVar(&o.sessionLifetime, "session-lifetime", 12*time.Hour, "a token expires this long after login, however busy")
	fs.BoolVar(&o.tls, "tls", false, "serve HTTPS (a self-signed certificate is made in the data folder on first start unless --tls-cert/--tls-key name one)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate for --tls")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM key for --tls")
	fs.BoolVar(&o.httpRedirect, "http-redirect", true, "with --tls: plain HTTP on the same port is redirected to HTTPS (false: refused)")
}

// firstAdmin creates the first admin when user management is on and there is none: the password
// comes from --admin-password-file or the terminal. There is no built-in password.
func firstAdmin(st *store.Store, o securityOptions, log *slog.Logger) error {
	has, err := auth.HasAdmin(st)
	if err != nil || has {
		return err
	}
	var pw string
	switch {
	case o.adminPassFile != "":
		data, err := os.ReadFile(o.adminPassFile)
		if err != nil {
			return fmt.Errorf("admin password file: %w", err)
		}
		pw = strings.TrimRight(string(data), "\r\n")
	case term.IsTerminal(int(os.Stdin.Fd())):
		if pw, err = askNew(fmt.Sprintf("User management is on and there is no admin yet.\nPassword for admin %q: ", o.adminName)); err != nil {
			return err
		}
	default:
		return errors.New("user management is on and there is no admin yet: give the first admin's password with --admin-password-file FILE, or start once on a terminal")
	}
	if _, err := auth.AddUser(st, o.adminName, pw, auth.Admin); err != nil {
		return fmt.Errorf("first admin: %w", err)
	}
	if err := st.AppendAudit(&store.AuditRecord{Time: time.Now(), User: api.OfflineUser, Addr: "first start",
		Action: "post users", Params: map[string]string{"name": o.adminName, "role": string(auth.Admin)}, Result: "201 Created"}); err != nil {
		return err
	}
	log.Info("first admin created", "user", o.adminName)
	return nil
}

// askNew reads a new password twice from the terminal without echo.
func askNew(prompt string) (string, error) {
	fmt.Fprint(os.Stderr, prompt)
	a, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	fmt.Fprint(os.Stderr, "Again: ")
	b, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if string(a) != string(b) {
		return "", errors.New("the two passwords differ")
	}
	return string(a), nil
}

// readPassword reads a password: without echo on a terminal (twice), else one line of stdin.
func readPassword(prompt string) (string, error) {
	if term.IsTerminal(int(os.Stdin.Fd())) {
		return askNew(prompt)
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// serveSocket serves the command line on the data folder's Unix socket: mode 0600, and only
// peers running as root or as the daemon's own user are answered. Closing the server removes
// the socket (net.UnixListener unlinks the path it created).
func serveSocket(dataDir string, h http.Handler, log *slog.Logger) (*http.Server, error) {
	path := filepath.Join(dataDir, SocketName)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("old socket: %w", err)
	}
	// The umask closes the window between bind and chmod.
	old := unix.Umask(0o177)
	ln, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("local socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("local socket: %w", err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew && !rootPeer(c) {
				log.Warn("local socket: refused a peer that is neither root nor the daemon's user")
				c.Close()
			}
		}}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("local socket", "err", err)
		}
	}()
	return hs, nil
}

// rootPeer checks the peer's credentials (SO_PEERCRED).
func rootPeer(c net.Conn) bool {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil || cerr != nil {
		return false
	}
	return cred.Uid == 0 || int(cred.Uid) == os.Getuid()
}

// serveHTTP serves the API on ln: plain HTTP, or with --tls HTTPS and, on the same port, plain
// HTTP redirected or refused. It returns the scheme.
func serveHTTP(hs *http.Server, ln net.Listener, dataDir string, o securityOptions, log *slog.Logger, errc chan<- error) (string, error) {
	if !o.tls {
		go func() { errc <- hs.Serve(ln) }()
		return "http", nil
	}
	var cert tls.Certificate
	var err error
	if o.tlsCert != "" || o.tlsKey != "" {
		if o.tlsCert == "" || o.tlsKey == "" {
			return "", errors.New("--tls-cert and --tls-key go together")
		}
		cert, err = transport.LoadPair(o.tlsCert, o.tlsKey)
	} else {
		var created bool
		host, _ := os.Hostname()
		cert, created, err = transport.LoadOrCreate(dataDir, []string{host, hostOf(ln.Addr().String())})
		if created {
			log.Info("TLS certificate created", "file", filepath.Join(dataDir, transport.CertFile))
		}
	}
	if err != nil {
		return "", err
	}
	log.Info("TLS certificate", "sha256", transport.Fingerprint(cert.Certificate[0]))
	tlsLn, plainLn := transport.Split(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	go func() { errc <- hs.Serve(tlsLn) }()
	if o.httpRedirect {
		redirect := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// 308 keeps the method and body (POST /login).
			http.Redirect(w, r, "https://"+r.Host+r.URL.RequestURI(), http.StatusPermanentRedirect)
		})}
		go func() { _ = redirect.Serve(plainLn) }()
	} else {
		go func() {
			for {
				c, err := plainLn.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	return "https", nil
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}
