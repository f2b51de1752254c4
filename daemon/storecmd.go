package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/evidenced/evidenced/store"
)

// The admin socket lets `evidenced store check|backup` reach the running daemon, which holds bbolt's
// exclusive lock on the state file (a second process can open it neither read-write nor read-only).
// It is a Unix socket in the data directory (mode 0700, socket 0600): the file system is its access
// control, so it needs no token, works whether user management is on or off, and never carries the
// store over the network.
const adminSocket = "admin.sock"

// serveAdmin listens on the admin socket until ctx ends.
func serveAdmin(ctx context.Context, dataDir string, st *store.Store, log *slog.Logger) error {
	path := filepath.Join(dataDir, adminSocket)
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSocket != 0 {
		_ = os.Remove(path) // left by a daemon that did not shut down
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("admin socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /store/check", func(w http.ResponseWriter, r *http.Request) {
		if err := st.Check(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /store/backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
		if _, err := st.Backup(w); err != nil {
			log.Error("store backup", "err", err)
		}
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		hs.Close()
		os.Remove(path)
	}()
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin socket", "err", err)
		}
	}()
	return nil
}

// adminGet asks the running daemon through its admin socket.
func adminGet(dataDir, route string) (*http.Response, error) {
	sock := filepath.Join(dataDir, adminSocket)
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Get("http://evidenced" + route)
	if err != nil {
		return nil, fmt.Errorf("the state file is in use and the daemon's admin socket %s does not answer: %w", sock, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("daemon: %s", bytes.TrimSpace(msg))
	}
	return resp, nil
}

// storeCmd runs `evidenced store check|backup`: offline when no daemon holds the file, else through
// the daemon's admin socket.
func storeCmd(args []string, stdout io.Writer) error {
	usage := errors.New("usage: evidenced store check [--data-dir DIR] | evidenced store backup FILE [--data-dir DIR]")
	if len(args) == 0 {
		return usage
	}
	fs := flag.NewFlagSet("store", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "/var/lib/evidenced", "state directory")
	var dst string
	switch {
	case args[0] == "check":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
	case args[0] == "backup" && len(args) >= 2:
		dst = args[1]
		if err := fs.Parse(args[2:]); err != nil {
			return err
		}
	default:
		return usage
	}
	if fs.NArg() != 0 {
		return usage
	}
	path := filepath.Join(*dataDir, "evidenced.db")
	if dst == "" {
		err := store.Check(path)
		if errors.Is(err, store.ErrInUse) {
			var resp *http.Response
			if resp, err = adminGet(*dataDir, "/store/check"); err == nil {
				resp.Body.Close()
			}
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "state file %s: ok\n", path)
		return nil
	}
	err := store.BackupFile(path, dst)
	if errors.Is(err, store.ErrInUse) {
		err = store.WriteBackup(dst, func(w io.Writer) error {
			resp, err := adminGet(*dataDir, "/store/backup")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			n, err := io.Copy(w, resp.Body)
			if err != nil {
				return err
			}
			if n != resp.ContentLength {
				return fmt.Errorf("daemon sent %d of %d bytes", n, resp.ContentLength)
			}
			return nil
		})
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "state file %s backed up to %s (checked)\n", path, dst)
	return nil
}
