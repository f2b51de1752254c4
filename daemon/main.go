// Command evidenced is the appliance's daemon: it powers the ports, identifies and write-blocks the
// drives, and images them on request of the HTTP API (TaskForce Web API compatible).
//
//	evidenced [flags]                 serve the API
//	evidenced user add NAME           create a user; the password is read from stdin
//	evidenced acquire --source PATH … image a device or file once, without the daemon
//	evidenced update ROOTFS-IMAGE     install a root image into the appliance's inactive slot
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/evidenced/evidenced/daemon/api"
	"github.com/evidenced/evidenced/daemon/tasks"
	"github.com/evidenced/evidenced/daemon/web"
	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/hal/sim"
	"github.com/evidenced/evidenced/store"
	"github.com/evidenced/evidenced/systemd"
)

// Version is set at build time.
var Version = "0.1.0"

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type options struct {
	listen      string
	dataDir     string
	board       string
	roots       multiFlag
	userMgmt    bool
	tokenTTL    time.Duration
	applianceID string
	spinUp      time.Duration
}

func main() {
	log := systemd.Logger(os.Stderr, slog.LevelInfo)
	args := os.Args[1:]
	var err error
	switch {
	case len(args) > 0 && args[0] == "user":
		err = userCmd(args[1:])
	case len(args) > 0 && args[0] == "acquire":
		err = acquireCmd(args[1:], log)
	case len(args) > 0 && args[0] == "update":
		err = updateCmd(args[1:], log)
	case len(args) > 0 && args[0] == "version":
		fmt.Println("evidenced", Version)
	default:
		err = serve(args, log)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "evidenced:", err)
		os.Exit(1)
	}
}

func serveFlags(fs *flag.FlagSet) *options {
	o := &options{}
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address of the HTTP API")
	fs.StringVar(&o.dataDir, "data-dir", "/var/lib/evidenced", "state directory (store, demo drives)")
	fs.StringVar(&o.board, "board", "sim", "board: sim (built-in demo board) or the path of a board file")
	fs.Var(&o.roots, "target-root", "local folder a targetFolder may point into (repeatable)")
	fs.BoolVar(&o.userMgmt, "user-management", false, "require a login token on every /api call")
	fs.DurationVar(&o.tokenTTL, "token-ttl", time.Hour, "idle time after which a token expires")
	fs.StringVar(&o.applianceID, "appliance-id", "", "appliance id in task keys (default: from the board, else EVD0001)")
	fs.DurationVar(&o.spinUp, "spin-up", 0, "simulated drive spin-up time (sim board; 0 = the board's default)")
	return o
}

func openBoard(o *options, log *slog.Logger) (hal.Board, string, error) {
	var desc board.Description
	var err error
	if o.board == "sim" {
		id := o.applianceID
		if id == "" {
			id = "EVD0001"
		}
		desc, err = sim.DemoDescription(o.dataDir, id)
		if err != nil {
			return nil, "", fmt.Errorf("demo board: %w", err)
		}
		o.roots = append(o.roots, filepath.Join(o.dataDir, "targets"))
		if err := os.MkdirAll(filepath.Join(o.dataDir, "targets"), 0o755); err != nil {
			return nil, "", err
		}
	} else {
		desc, err = board.Load(o.board)
		if err != nil {
			return nil, "", err
		}
	}
	if desc.Kind != "sim" {
		return nil, "", fmt.Errorf("board kind %q is not supported by this build (supported: sim)", desc.Kind)
	}
	b, err := sim.New(desc, sim.Options{SpinUp: o.spinUp, Logger: log})
	if err != nil {
		return nil, "", err
	}
	id := desc.ApplianceID
	if o.applianceID != "" {
		id = o.applianceID
	}
	if id == "" {
		id = "EVD0001"
	}
	return b, id, nil
}

func serve(args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("evidenced", flag.ContinueOnError)
	o := serveFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	st, err := store.Open(filepath.Join(o.dataDir, "evidenced.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	b, applianceID, err := openBoard(o, log)
	if err != nil {
		return err
	}
	defer b.Close()
	// Port modes the examiner set survive restarts.
	modes, err := st.PortModes()
	if err != nil {
		return err
	}
	for name, m := range modes {
		if p, ok := b.Port(name); ok {
			if err := p.SetMode(hal.Mode(m)); err != nil {
				log.Warn("restore port mode", "port", name, "err", err)
			}
		}
	}
	roots := make([]string, 0, len(o.roots))
	for _, r := range o.roots {
		abs, err := filepath.Abs(r)
		if err != nil {
			return err
		}
		roots = append(roots, abs)
	}
	tm, err := tasks.New(st, b, log, tasks.Config{ApplianceID: applianceID, TargetRoots: roots, Software: "evidenced " + Version})
	if err != nil {
		return err
	}
	srv := api.New(b, tm, st, log, api.Config{UserManagement: o.userMgmt, TokenTTL: o.tokenTTL, Version: Version})
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ui, err := web.New()
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: ui.Wrap(srv.Handler()), ReadHeaderTimeout: 10 * time.Second}
	hs.RegisterOnShutdown(srv.StopEvents)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go systemd.Watchdog(ctx, healthChecker(st, tm, ln.Addr(), log).Healthy)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("evidenced serving", "version", Version, "listen", ln.Addr().String(), "board", o.board,
		"appliance", applianceID, "userManagement", o.userMgmt, "targetRoots", roots)
	systemd.Ready()
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	systemd.Stopping()
	log.Info("shutting down: pausing running tasks")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	tm.Close()
	return nil
}

func userCmd(args []string) error {
	if len(args) < 2 || args[0] != "add" {
		return errors.New("usage: evidenced user add NAME [--data-dir DIR] (password on stdin)")
	}
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "/var/lib/evidenced", "state directory")
	name := args[1]
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return err
	}
	pw, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password: %w", err)
	}
	pw = strings.TrimRight(pw, "\r\n")
	st, err := store.Open(filepath.Join(*dataDir, "evidenced.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	if err := api.AddUser(st, name, pw); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "user %s saved\n", name)
	return nil
}
