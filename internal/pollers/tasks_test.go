package pollers

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI starts tasks that complete (or fail, for a source named "bad") after the given times, and
// counts the connections used.
type fakeAPI struct {
	mu    sync.Mutex
	ends  map[string]time.Time
	fail  map[string]bool
	conns map[string]bool
	took  map[string]time.Duration
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns[r.RemoteAddr] = true
	q := r.URL.Query()
	switch r.URL.Path {
	case "/api/start-image":
		src := q.Get("source")
		d, ok := f.took[src]
		if !ok {
			http.Error(w, "no such port", http.StatusBadRequest)
			return
		}
		key := fmt.Sprintf("image_0_Bench%%20Disk_%s_X_%d", src, len(f.ends))
		f.ends[key] = time.Now().Add(d)
		f.fail[key] = src == "bad"
		fmt.Fprint(w, key)
	case "/api/check-task":
		k := q.Get("taskKey")
		end, ok := f.ends[k]
		switch {
		case !ok:
			http.Error(w, "unknown task "+k, http.StatusNotFound)
		case time.Now().Before(end):
			fmt.Fprint(w, `{"state": "progress"}`)
		case f.fail[k]:
			fmt.Fprint(w, `{"state": "failed", "message": "read error"}`)
		default:
			fmt.Fprint(w, `{"state": "completed"}`)
		}
	default:
		http.NotFound(w, r)
	}
}

// TestTasksRun: three tasks ending after 50, 150 and 100 ms are timed from the first start to the
// last completion (150 ms plus at most a polling interval), the keys (with their %20) come back in
// order and are handed over while the tasks run, all on one connection.
func TestTasksRun(t *testing.T) {
	f := &fakeAPI{ends: map[string]time.Time{}, fail: map[string]bool{}, conns: map[string]bool{},
		took: map[string]time.Duration{"A": 50 * time.Millisecond, "B": 150 * time.Millisecond, "C": 100 * time.Millisecond, "bad": 30 * time.Millisecond}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	var early []string
	run, err := Tasks{API: srv.URL, Interval: 10 * time.Millisecond}.Run(context.Background(),
		[]string{"/api/start-image?source=A", "/api/start-image?source=B", "/api/start-image?source=C"},
		func(keys []string) { early = keys })
	if err != nil {
		t.Fatal(err)
	}
	if run.Elapsed < 150*time.Millisecond || run.Elapsed > 400*time.Millisecond {
		t.Errorf("elapsed %v, want 150 ms and a little", run.Elapsed)
	}
	if len(run.Keys) != 3 || !strings.Contains(run.Keys[0], "_A_") || !strings.Contains(run.Keys[1], "_B_") ||
		!strings.Contains(run.Keys[2], "%20") || strings.Join(early, " ") != strings.Join(run.Keys, " ") {
		t.Errorf("keys %q, handed over %q", run.Keys, early)
	}
	if len(f.conns) != 1 {
		t.Errorf("%d connections, want 1", len(f.conns))
	}

	// A failed task is an error naming it with its answer; a refused start is an error too.
	_, err = Tasks{API: srv.URL, Interval: 10 * time.Millisecond}.Run(context.Background(),
		[]string{"/api/start-image?source=A", "/api/start-image?source=bad"}, nil)
	if err == nil || !strings.Contains(err.Error(), "failed") || !strings.Contains(err.Error(), "read error") {
		t.Errorf("failed task: %v", err)
	}
	_, err = Tasks{API: srv.URL, Interval: 10 * time.Millisecond}.Run(context.Background(), []string{"/api/start-image?source=Z"}, nil)
	if err == nil || !strings.Contains(err.Error(), "no such port") {
		t.Errorf("refused start: %v", err)
	}
	if _, err := (Tasks{API: srv.URL}).Run(context.Background(), []string{"/x"}, nil); err == nil {
		t.Error("no interval: no error")
	}
}
