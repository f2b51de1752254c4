// Package health decides whether the daemon is healthy enough to ping systemd's watchdog: each
// probe (the store answers a read, the task manager's lock can be taken, the HTTP accept loop
// serves a request) must succeed within a deadline. A wedged daemon stops pinging, and systemd
// restarts it.
package health

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Probe is one check; it must return by ctx's deadline.
type Probe struct {
	Name  string
	Check func(ctx context.Context) error
}

// Checker runs probes.
type Checker struct {
	Probes  []Probe
	Timeout time.Duration // per probe
	Log     *slog.Logger
}

// Check runs every probe and returns the first failure.
func (c Checker) Check(ctx context.Context) error {
	for _, p := range c.Probes {
		pctx, cancel := context.WithTimeout(ctx, c.Timeout)
		errc := make(chan error, 1)
		// A probe stuck past its deadline (a lock that never frees) is abandoned, not waited for.
		go func() { errc <- p.Check(pctx) }()
		var err error
		select {
		case err = <-errc:
		case <-pctx.Done():
			err = pctx.Err()
		}
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	return nil
}

// Healthy is Check as the watchdog wants it; failures are logged.
func (c Checker) Healthy() bool {
	if err := c.Check(context.Background()); err != nil {
		c.Log.Error("health check failed: not pinging the watchdog", "err", err)
		return false
	}
	return true
}

// HTTPProbe checks that the server on addr (the daemon's own listener) accepts a connection and
// answers GET path with 200. A wildcard listen address is reached over loopback.
func HTTPProbe(scheme string, addr net.Addr, path string) func(ctx context.Context) error {
	target := addr.String()
	if ta, ok := addr.(*net.TCPAddr); ok && (ta.IP == nil || ta.IP.IsUnspecified()) {
		host := "127.0.0.1"
		if ta.IP != nil && ta.IP.To4() == nil {
			host = "::1"
		}
		target = net.JoinHostPort(host, fmt.Sprint(ta.Port))
	}
	// The daemon probes its own listener: with --tls its certificate is its own, often
	// self-signed, and proving it to itself adds nothing; the probe asks only "does it answer".
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	url := scheme + "://" + target + path
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return nil
	}
}
