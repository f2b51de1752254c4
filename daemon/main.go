// Command evidenced is the appliance's daemon: it powers the ports, identifies and write-blocks the
// drives, and images them on request of the HTTP API (TaskForce Web API compatible).
//
//	evidenced [flags]                 serve the API
//	evidenced user list|add|remove|passwd|role …  manage accounts (through the running daemon's
//	                                  socket, or on the store when the daemon is stopped)
//	evidenced audit verify            check the audit trail's hash chain
//	evidenced tls fingerprint         the HTTPS certificate's SHA-256 fingerprint
//	evidenced acquire --source PATH … image a device or file once, without the daemon
//	evidenced board discover          print a board file skeleton for this machine
//	evidenced store check|backup FILE check the state file, or copy it consistently (daemon running or not)
//	evidenced update ROOTFS-IMAGE     install a root image into the appliance's inactive slot
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // -time-zone works on an appliance image without /usr/share/zoneinfo

	"github.com/evidenced/evidenced/daemon/api"
	"github.com/evidenced/evidenced/daemon/tasks"
	"github.com/evidenced/evidenced/daemon/web"
	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/hal/idle"
	halinux "github.com/evidenced/evidenced/hal/linux"
	"github.com/evidenced/evidenced/hal/sim"
	"github.com/evidenced/evidenced/imaging/pipeline"
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
	simRoots    multiFlag
	userMgmt    bool
	tokenTTL    time.Duration
	security    securityOptions
	applianceID string
	spinUp      time.Duration
	timeZone    string
	cpuProfile  string
}

func main() {
	// The main thread stays main's: the imaging's threads lower their own priority for good
	// (pipeline.Background), and the main thread's priority is the one ps shows for the process.
	runtime.LockOSThread()
	log := systemd.Logger(os.Stderr, slog.LevelInfo)
	args := os.Args[1:]
	var err error
	switch {
	case len(args) > 0 && args[0] == "user":
		err = userCmd(args[1:])
	case len(args) > 0 && args[0] == "audit":
		err = auditCmd(args[1:])
	case len(args) > 0 && args[0] == "tls":
		err = tlsCmd(args[1:])
	case len(args) > 0 && args[0] == "store":
		err = storeCmd(args[1:], os.Stdout)
	case len(args) > 0 && args[0] == "acquire":
		err = acquireCmd(args[1:], log)
	case len(args) > 0 && args[0] == "board":
		err = boardCmd(args[1:], os.Stdout, os.Stderr)
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
	fs.Var(&o.simRoots, "sim-root", "folder whose image files /api/sim/plug may connect (repeatable; default DATA-DIR/sim)")
	fs.BoolVar(&o.userMgmt, "user-management", false, "require a login token on every /api call")
	fs.DurationVar(&o.tokenTTL, "token-ttl", time.Hour, "idle time after which a token expires")
	securityFlags(fs, &o.security)
	fs.StringVar(&o.applianceID, "appliance-id", "", "appliance id in task keys (default: from the board, else EVD0001)")
	fs.DurationVar(&o.spinUp, "spin-up", 0, "simulated drive spin-up time (sim board; 0 = the board's default)")
	fs.StringVar(&o.timeZone, "time-zone", "", "IANA time zone reports show times in, with UTC beside (e.g. Europe/Berlin; default: the system's local zone)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile (pprof) of the daemon's whole run to this file, for development (make bench)")
	return o
}

// openedBoard is the board the daemon runs on and what its description says beyond the ports.
type openedBoard struct {
	hal.Board
	applianceID  string
	idlePowerOff time.Duration // 0: ports stay powered until shutdown
}

func openBoard(o *options, log *slog.Logger) (openedBoard, error) {
	var desc board.Description
	var err error
	if len(o.simRoots) == 0 {
		def := filepath.Join(o.dataDir, "sim")
		if err := os.MkdirAll(def, 0o755); err != nil {
			return openedBoard{}, fmt.Errorf("sim root: %w", err)
		}
		o.simRoots = append(o.simRoots, def)
	}
	if o.board == "sim" {
		id := o.applianceID
		if id == "" {
			id = "EVD0001"
		}
		desc, err = sim.DemoDescription(o.dataDir, id)
		if err != nil {
			return openedBoard{}, fmt.Errorf("demo board: %w", err)
		}
		o.roots = append(o.roots, filepath.Join(o.dataDir, "targets"))
		o.simRoots = append(o.simRoots, filepath.Join(o.dataDir, sim.DemoDir)) // so the demo drives can be re-plugged
		if err := os.MkdirAll(filepath.Join(o.dataDir, "targets"), 0o755); err != nil {
			return openedBoard{}, err
		}
	} else {
		desc, err = board.Load(o.board)
		if err != nil {
			return openedBoard{}, err
		}
	}
	var b hal.Board
	switch desc.Kind {
	case board.KindSim:
		b, err = sim.New(desc, sim.Options{SpinUp: o.spinUp, Logger: log, PlugRoots: o.simRoots})
	case board.KindLinux:
		b, err = halinux.New(desc, halinux.Options{Logger: log})
	default:
		err = fmt.Errorf("board kind %q is not supported (supported: sim, linux)", desc.Kind)
	}
	if err != nil {
		return openedBoard{}, err
	}
	id := desc.ApplianceID
	if o.applianceID != "" {
		id = o.applianceID
	}
	if id == "" {
		id = "EVD0001"
	}
	return openedBoard{Board: b, applianceID: id, idlePowerOff: time.Duration(desc.IdlePowerOff)}, nil
}

func serve(args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("evidenced", flag.ContinueOnError)
	o := serveFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.cpuProfile != "" {
		stop, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	st, err := store.Open(filepath.Join(o.dataDir, "evidenced.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	ob, err := openBoard(o, log)
	if err != nil {
		return err
	}
	b, applianceID := ob.Board, ob.applianceID
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
	zone, err := reportZone(o.timeZone)
	if err != nil {
		return err
	}
	bg := pipeline.NewBackground()
	tm, err := tasks.New(st, b, log, tasks.Config{ApplianceID: applianceID, TargetRoots: roots, Software: "evidenced " + Version, TimeZone: zone,
		Background: bg})
	if err != nil {
		return err
	}
	if o.userMgmt {
		if err := firstAdmin(st, o.security, log); err != nil {
			return err
		}
	}
	var idleWatch *idle.Watcher
	acfg := api.Config{UserManagement: o.userMgmt, TokenTTL: o.tokenTTL, SessionLifetime: o.security.sessionLifetime, Version: Version}
	if ob.idlePowerOff > 0 {
		// Idle Source ports go off; scan-port, source-drives and tasks power them on as ever, and a
		// scan restarts a port's count.
		idleWatch = idle.New(b, idle.Config{After: ob.idlePowerOff, Busy: func(p string) bool { return tm.BusyTask(p) != "" }, Hold: tm.HoldIdle, Log: log})
		acfg.PortUsed = idleWatch.Touch
	}
	srv, err := api.New(b, tm, st, log, acfg)
	if err != nil {
		return err
	}
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
	runCtx, stopRun := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { srv.Run(runCtx); close(ran) }()
	defer func() { stopRun(); <-ran }()
	if idleWatch != nil {
		go idleWatch.Run(runCtx)
	}
	sock, err := serveSocket(o.dataDir, localHandler(srv.LocalHandler(), st, log), log)
	if err != nil {
		return err
	}
	defer sock.Close()
	errc := make(chan error, 2)
	scheme, err := serveHTTP(hs, ln, o.dataDir, o.security, log, errc)
	if err != nil {
		return err
	}
	go systemd.Watchdog(ctx, healthChecker(st, tm, scheme, ln.Addr(), log).Healthy)
	log.Info("evidenced serving", "version", Version, "listen", ln.Addr().String(), "scheme", scheme, "board", o.board,
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
	bg.Close() // every run has ended: none uses the shared encoders any more
	return nil
}

// reportZone is the zone of -time-zone (an IANA name), or the system's local zone by the name its
// /etc/localtime link gives (Go calls it "Local", which names nothing in a report).
func reportZone(name string) (*time.Location, error) {
	if name == "" {
		if tz := os.Getenv("TZ"); tz != "" {
			name = strings.TrimPrefix(tz, ":")
		} else if link, err := os.Readlink("/etc/localtime"); err == nil {
			if _, after, ok := strings.Cut(link, "zoneinfo/"); ok {
				name = after
			}
		}
		if loc, err := time.LoadLocation(name); err == nil && name != "" {
			return loc, nil
		}
		return time.Local, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("-time-zone %q: %w", name, err)
	}
	return loc, nil
}
