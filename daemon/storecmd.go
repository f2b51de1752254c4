package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"

	"github.com/evidenced/evidenced/store"
)

// The daemon's local socket (SocketName: a Unix socket in the data directory, 0600, peers checked
// by SO_PEERCRED) also serves `evidenced store check|backup`: the daemon holds bbolt's exclusive lock
// on the state file, so a second process can open it neither read-write nor read-only. The file
// system is the access control: no token, user management on or off, never over the network.

// localHandler adds the store's routes (/store/check, /store/backup) to the account calls h.
func localHandler(h http.Handler, st *store.Store, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
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
	return mux
}

// adminGet asks the running daemon through its local socket.
func adminGet(dataDir, route string) (*http.Response, error) {
	sock := filepath.Join(dataDir, SocketName)
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Get("http://evidenced" + route)
	if err != nil {
		return nil, fmt.Errorf("the state file is in use and the daemon's local socket %s does not answer: %w", sock, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("daemon: %s", bytes.TrimSpace(msg))
	}
	return resp, nil
}

// storeCmd runs `evidenced store check|backup`: offline when no daemon holds the file, else through
// the daemon's local socket.
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
