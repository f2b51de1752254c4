package main

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/evidenced/evidenced/daemon/health"
	"github.com/evidenced/evidenced/daemon/tasks"
	"github.com/evidenced/evidenced/store"
)

// healthChecker is what the systemd watchdog ping depends on: the store answers a read, the task
// manager's lock can be taken, and the HTTP accept loop serves /healthz. Each must answer within a
// few seconds (well under half of the unit's WatchdogSec).
func healthChecker(st *store.Store, tm *tasks.Manager, scheme string, addr net.Addr, log *slog.Logger) health.Checker {
	return health.Checker{
		Timeout: 3 * time.Second,
		Log:     log,
		Probes: []health.Probe{
			{Name: "store read", Check: func(context.Context) error { _, err := st.PortModes(); return err }},
			{Name: "task manager", Check: tm.Ping},
			{Name: "HTTP accept loop", Check: health.HTTPProbe(scheme, addr, "/healthz")},
		},
	}
}
