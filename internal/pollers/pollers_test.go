package pollers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestRun: 10 pollers every 20 ms for 300 ms against a server that answers in about 5 ms: about
// 150 answers, each timed at 5 ms or more, one connection per poller, failures counted apart.
func TestRun(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		if r.URL.Query().Get("fail") != "" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res, err := Run(ctx, Config{URL: srv.URL, Clients: 10, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Times); n < 80 || n > 160 || res.Errors != 0 {
		t.Fatalf("%d answers, %d errors: want about 150 and none", n, res.Errors)
	}
	if q := res.Quantile(0.01); q < 5*time.Millisecond {
		t.Fatalf("an answer timed at %v, under the server's 5 ms", q)
	}
	mu.Lock()
	nconn := len(conns)
	mu.Unlock()
	if nconn != 10 {
		t.Fatalf("%d connections for 10 pollers", nconn)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	res, err = Run(ctx, Config{URL: srv.URL + "?fail=1", Clients: 2, Interval: 20 * time.Millisecond})
	if err != nil || len(res.Times) != 0 || res.Errors == 0 {
		t.Fatalf("failing answers: %d times, %d errors, %v", len(res.Times), res.Errors, err)
	}
	if _, err := Run(context.Background(), Config{URL: srv.URL}); err == nil {
		t.Fatal("no clients and no interval accepted")
	}
}

func TestQuantile(t *testing.T) {
	var r Result
	if r.Quantile(0.99) != 0 {
		t.Fatal("quantile of nothing")
	}
	for i := 100; i >= 1; i-- {
		r.Times = append(r.Times, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond, 0.001: time.Millisecond} {
		if got := r.Quantile(q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
}
