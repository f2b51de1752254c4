package linux

import (
	"context"
	"fmt"

	"github.com/jochenvg/go-udev"
)

// uevent is what the board needs of a block device event.
type uevent struct {
	action string // add, remove, change, online, offline
	name   string // kernel name: sda, sda1, nvme0n1, loop7
}

// watch listens to block device uevents from the given netlink source ("kernel" or "udev") until
// ctx ends; then the returned channel closes. go-udev's own goroutine blocks on its channel, so
// after ctx ends the channel is drained until go-udev closes it: nothing is left behind.
func watch(ctx context.Context, source string, onErr func(error)) (<-chan uevent, error) {
	if source != "kernel" && source != "udev" {
		return nil, fmt.Errorf("uevent source %q (accepted: kernel, udev)", source)
	}
	var u udev.Udev
	m := u.NewMonitorFromNetlink(source)
	if m == nil {
		return nil, fmt.Errorf("uevents: cannot open the %s netlink source", source)
	}
	if err := m.FilterAddMatchSubsystem("block"); err != nil {
		return nil, fmt.Errorf("uevents: filter: %w", err)
	}
	// A storm of events must not overflow the socket: ask for a large receive buffer.
	_ = m.SetReceiveBufferSize(8 << 20)
	devs, errs, err := m.DeviceChan(ctx)
	if err != nil {
		return nil, fmt.Errorf("uevents: %w", err)
	}
	out := make(chan uevent, 256)
	go func() {
		defer close(out)
		for {
			select {
			case d, ok := <-devs:
				if !ok {
					return
				}
				if d.Subsystem() != "block" {
					continue
				}
				select {
				case out <- uevent{action: d.Action(), name: d.Sysname()}:
				case <-ctx.Done():
				}
			case e, ok := <-errs:
				if !ok {
					errs = nil
					continue
				}
				if ctx.Err() == nil {
					onErr(e) // go-udev ends its loop after an error; devs closes next
				}
			}
		}
	}()
	return out, nil
}
