package health

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCheckerFailsOnHungOrFailingProbe(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ok := Probe{Name: "ok", Check: func(context.Context) error { return nil }}
	hung := Probe{Name: "hung", Check: func(context.Context) error { select {} }}
	bad := Probe{Name: "bad", Check: func(context.Context) error { return errors.New("store closed") }}
	if !(Checker{Probes: []Probe{ok}, Timeout: time.Second, Log: log}).Healthy() {
		t.Fatal("healthy probes reported unhealthy")
	}
	start := time.Now()
	err := Checker{Probes: []Probe{ok, hung}, Timeout: 100 * time.Millisecond, Log: log}.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "hung") || time.Since(start) > 2*time.Second {
		t.Fatalf("hung probe: %v after %s", err, time.Since(start))
	}
	if err := (Checker{Probes: []Probe{bad, ok}, Timeout: time.Second, Log: log}).Check(context.Background()); err == nil || !strings.Contains(err.Error(), "bad: store closed") {
		t.Fatalf("failing probe: %v", err)
	}
}

func TestHTTPProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	}))
	addr := srv.Listener.Addr()
	if err := HTTPProbe("http", addr, "/healthz")(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := HTTPProbe("http", addr, "/nope")(context.Background()); err == nil {
		t.Fatal("404 accepted")
	}
	// A wildcard listen address is probed over loopback.
	wild := &net.TCPAddr{IP: net.IPv4zero, Port: addr.(*net.TCPAddr).Port}
	if err := HTTPProbe("http", wild, "/healthz")(context.Background()); err != nil {
		t.Fatalf("wildcard: %v", err)
	}
	// With --tls the daemon probes its own (self-signed) HTTPS listener.
	tsrv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer tsrv.Close()
	if err := HTTPProbe("https", tsrv.Listener.Addr(), "/healthz")(context.Background()); err != nil {
		t.Fatalf("https: %v", err)
	}
	if err := HTTPProbe("http", tsrv.Listener.Addr(), "/healthz")(context.Background()); err == nil {
		t.Fatal("plain HTTP to a TLS listener passed")
	}
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := HTTPProbe("http", addr, "/healthz")(ctx); err == nil {
		t.Fatal("a closed accept loop passed")
	}
}
