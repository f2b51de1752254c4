// Package systemd is the daemon's glue to systemd: readiness, watchdog and stopping notifications
// (Type=notify units). Outside systemd every call is a no-op.
package systemd

import (
	"context"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Ready tells systemd the daemon is serving.
func Ready() { _, _ = daemon.SdNotify(false, daemon.SdNotifyReady) }

// Stopping tells systemd the daemon is shutting down.
func Stopping() { _, _ = daemon.SdNotify(false, daemon.SdNotifyStopping) }

// Watchdog pings the systemd watchdog at half its interval while healthy returns true, until ctx ends.
func Watchdog(ctx context.Context, healthy func() bool) {
	iv, err := daemon.SdWatchdogEnabled(false)
	if err != nil || iv == 0 {
		return
	}
	t := time.NewTicker(iv / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if healthy() {
				_, _ = daemon.SdNotify(false, daemon.SdNotifyWatchdog)
			}
		}
	}
}
