package auth

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidenced/evidenced/store"
)

// countingStore is a TokenStore that counts writes.
type countingStore struct {
	mu     sync.Mutex
	toks   map[string]*store.Token
	writes int
}

func (c *countingStore) Tokens() (map[string]*store.Token, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]*store.Token{}
	for k, v := range c.toks {
		cp := *v
		out[k] = &cp
	}
	return out, nil
}

func (c *countingStore) PutToken(h string, t *store.Token) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	c.toks[h] = t
	return nil
}

func (c *countingStore) DeleteToken(h string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	delete(c.toks, h)
	return nil
}

func (c *countingStore) SyncTokens(last map[string]time.Time, drop func(*store.Token) bool) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	for h, at := range last {
		if t := c.toks[h]; t != nil && at.After(t.LastUsed) {
			t.LastUsed = at
		}
	}
	n := 0
	for h, t := range c.toks {
		if drop(t) {
			delete(c.toks, h)
			n++
		}
	}
	return n, nil
}

// Checking tokens writes nothing; one flush writes every last use in one go.
func TestSessionsCheckWritesNothing(t *testing.T) {
	cs := &countingStore{toks: map[string]*store.Token{}}
	ss, err := NewSessions(cs, SessionConfig{Idle: time.Hour}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ss.Create("ex1", Examiner)
	if err != nil {
		t.Fatal(err)
	}
	before := cs.writes
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if se, ok := ss.Check(tok); !ok || se.User != "ex1" || se.Role != Examiner {
					t.Errorf("check: %+v %v", se, ok)
					return
				}
			}
		}()
	}
	wg.Wait()
	if cs.writes != before {
		t.Fatalf("%d store writes for 8000 checks", cs.writes-before)
	}
	created := cs.toks[TokenHash(tok)].LastUsed
	if err := ss.Flush(); err != nil {
		t.Fatal(err)
	}
	if cs.writes != before+1 || !cs.toks[TokenHash(tok)].LastUsed.After(created) {
		t.Fatalf("flush: %d writes, last use %v", cs.writes-before, cs.toks[TokenHash(tok)].LastUsed)
	}
	if _, ok := ss.Check("not-a-token"); ok {
		t.Fatal("unknown token accepted")
	}
}

// Sessions of unknown users and those already over are not loaded, and leave the store.
func TestSessionsLoad(t *testing.T) {
	now := time.Now()
	cs := &countingStore{toks: map[string]*store.Token{
		TokenHash("live"):  {User: "ex1", Created: now.Add(-time.Hour), LastUsed: now.Add(-time.Minute)},
		TokenHash("idle"):  {User: "ex1", Created: now.Add(-time.Hour), LastUsed: now.Add(-20 * time.Minute)},
		TokenHash("old"):   {User: "ex1", Created: now.Add(-13 * time.Hour), LastUsed: now},
		TokenHash("ghost"): {User: "gone", Created: now, LastUsed: now},
	}}
	ss, err := NewSessions(cs, SessionConfig{Idle: 10 * time.Minute, Lifetime: 12 * time.Hour}, map[string]Role{"ex1": Admin},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if ss.Len() != 1 || len(cs.toks) != 1 {
		t.Fatalf("loaded %d, stored %d; want 1 and 1", ss.Len(), len(cs.toks))
	}
	if se, ok := ss.Check("live"); !ok || se.Role != Admin {
		t.Fatalf("live session: %+v %v", se, ok)
	}
}

// 200 concurrent attempts on one account: the free ones and the one that starts the lockout
// are checked, every other is refused with a wait, however the goroutines interleave.
func TestThrottleConcurrent(t *testing.T) {
	th := NewThrottle(ThrottleConfig{Free: 3, Base: time.Minute, Wait: time.Minute})
	var checked, refused atomic.Int64
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, wait := th.Begin(context.Background(), "ex1", "10.0.0.9")
			if a == nil {
				if wait <= 0 {
					t.Error("refused without a wait")
				}
				refused.Add(1)
				return
			}
			checked.Add(1)
			time.Sleep(5 * time.Millisecond) // the password check
			a.Done(false)
		}()
	}
	wg.Wait()
	if checked.Load() != 4 || refused.Load() != 196 {
		t.Fatalf("checked %d, refused %d; want 4 and 196", checked.Load(), refused.Load())
	}
	// Another address, same account: the account is locked.
	if a, wait := th.Begin(context.Background(), "ex1", "10.0.0.10"); a != nil || wait < 50*time.Second {
		t.Fatalf("locked account from another address: %v %v", a, wait)
	}
}

// A success for one account leaves the address's count as it was: the next failure from the
// address doubles its window.
func TestThrottleSuccessClearsOnlyItsAccount(t *testing.T) {
	th := NewThrottle(ThrottleConfig{Free: 1, Base: 300 * time.Millisecond, Max: time.Minute})
	ctx := context.Background()
	for range 2 {
		a, _ := th.Begin(ctx, "ex1", "10.0.0.9")
		if a == nil {
			t.Fatal("refused before the lockout")
		}
		a.Done(false)
	}
	if a, _ := th.Begin(ctx, "ex2", "10.0.0.9"); a != nil {
		t.Fatal("the locked address let another account through")
	}
	time.Sleep(350 * time.Millisecond)
	a, _ := th.Begin(ctx, "ex2", "10.0.0.9")
	if a == nil {
		t.Fatal("after the window: refused")
	}
	a.Done(true)
	a, _ = th.Begin(ctx, "ex3", "10.0.0.9")
	if a == nil {
		t.Fatal("after a success: refused")
	}
	a.Done(false)
	if _, wait := th.Begin(ctx, "ex2", "10.0.0.9"); wait < 400*time.Millisecond {
		t.Fatalf("address window after a success elsewhere: %v, want about 600 ms", wait)
	}
}

func TestNamesRolesPasswords(t *testing.T) {
	for _, bad := range []string{"", "two words", "tab\tname", "ctl\x01"} {
		if CheckName(bad) == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	if _, err := HashPassword("short"); err == nil {
		t.Error("short password accepted")
	}
	if r, err := ParseRole(" Admin "); err != nil || r != Admin {
		t.Errorf("role: %v %v", r, err)
	}
	if StoredRole("") != Admin {
		t.Error("a user from before roles is not an admin")
	}
	if NameTag("x") == NameTag("y") || NameTag("secret") == "secret" {
		t.Error("name tags")
	}
}
