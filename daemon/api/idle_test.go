package api

import (
	"slices"
	"sync"
	"testing"
)

// scan-port and source-drives tell the idle power-off timer which Source ports a client looked at,
// by canonical name, so that a drive being looked at is not powered off under the examiner.
func TestScansRestartIdleCount(t *testing.T) {
	var mu sync.Mutex
	var used []string
	e := newEnvCfg(t, Config{PortUsed: func(p string) {
		mu.Lock()
		used = append(used, p)
		mu.Unlock()
	}})
	if code, body := e.get("/api/scan-port?port=sata3"); code != 200 {
		t.Fatalf("scan-port: %d %s", code, body)
	}
	mu.Lock()
	got := slices.Clone(used)
	used = nil
	mu.Unlock()
	if !slices.Equal(got, []string{"SATA3"}) {
		t.Fatalf("scan-port told the idle timer %v, want [SATA3]", got)
	}
	if code, body := e.get("/api/source-drives"); code != 200 {
		t.Fatalf("source-drives: %d %s", code, body)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(used)
	if want := []string{"SATA1", "SATA2", "SATA3", "SATA4"}; !slices.Equal(used, want) {
		t.Fatalf("source-drives told the idle timer %v, want the Source ports %v", used, want)
	}
}
