package auth

import (
	"context"
	"sync"
	"time"
)

// ThrottleConfig shapes the login throttle.
type ThrottleConfig struct {
	Free   int           // failures allowed before the first lockout (default 3)
	Base   time.Duration // first lockout window; each further failure doubles it (default 1 s)
	Max    time.Duration // longest window (default 15 min)
	Wait   time.Duration // how long an attempt waits for one in progress on its account or address (default 2 s)
	Forget time.Duration // failures are forgotten after this long without one, once unlocked (default 30 min)
}

// Throttle limits password checks per account and per source address. A failure counts against
// both; past Free failures each is followed by a lockout window that doubles up to Max, during
// which attempts are refused without checking the password. Attempts on one account or from one
// address are checked one at a time, so parallel requests cannot slip in before the window
// starts. A success clears only its account: a good login for one account does not make guessing
// another from the same address cheaper. An address the account logged in from before is not
// held by the account's lockout (only by its own), so guessing from elsewhere cannot lock the
// owner out.
type Throttle struct {
	cfg ThrottleConfig

	mu    sync.Mutex
	slots map[string]*slot
	known map[string]time.Time // account + address -> last good login
	calls int
}

// maxKnown bounds the remembered good logins (real users × their addresses).
const maxKnown = 4096

type slot struct {
	fails int
	until time.Time     // locked until then
	last  time.Time     // last failure
	turn  chan struct{} // held while a password is being checked
}

// NewThrottle returns a throttle; zero fields of cfg take their defaults.
func NewThrottle(cfg ThrottleConfig) *Throttle {
	if cfg.Free <= 0 {
		cfg.Free = 3
	}
	if cfg.Base <= 0 {
		cfg.Base = time.Second
	}
	if cfg.Max <= 0 {
		cfg.Max = 15 * time.Minute
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 2 * time.Second
	}
	if cfg.Forget <= 0 {
		cfg.Forget = 30 * time.Minute
	}
	return &Throttle{cfg: cfg, slots: map[string]*slot{}, known: map[string]time.Time{}}
}

// Attempt is a password check the throttle let through; Done must be called with its outcome.
type Attempt struct {
	t     *Throttle
	slots []*slot
	known string // key of the account and address in known
}

// Begin asks to check a password for account from addr. It returns an Attempt, or the time to
// wait before trying again (the account or address is locked, or busy beyond Wait).
func (t *Throttle) Begin(ctx context.Context, account, addr string) (*Attempt, time.Duration) {
	keys := []string{"addr\x00" + addr, "acct\x00" + account}
	pair := account + "\x00" + addr
	t.mu.Lock()
	now := time.Now()
	t.sweep(now)
	_, trusted := t.known[pair]
	// Refuse a locked address before looking at the account, so refused requests naming ever new
	// accounts create nothing.
	if s := t.slots[keys[0]]; s != nil && now.Before(s.until) {
		t.mu.Unlock()
		return nil, s.until.Sub(now)
	}
	slots := make([]*slot, len(keys))
	for i, k := range keys {
		s := t.slots[k]
		if s == nil {
			s = &slot{turn: make(chan struct{}, 1)}
			t.slots[k] = s
		}
		slots[i] = s
	}
	t.mu.Unlock()

	// Take each slot's turn, always address first, then account (one order: no deadlock).
	timer := time.NewTimer(t.cfg.Wait)
	defer timer.Stop()
	for i, s := range slots {
		select {
		case s.turn <- struct{}{}:
		case <-timer.C:
			t.release(slots[:i])
			return nil, t.retryAfter(slots)
		case <-ctx.Done():
			t.release(slots[:i])
			return nil, t.retryAfter(slots)
		}
	}
	// The attempt before may have started a lockout while this one waited.
	t.mu.Lock()
	now = time.Now()
	wait := slots[0].until.Sub(now)
	if !trusted {
		wait = max(wait, slots[1].until.Sub(now))
	}
	t.mu.Unlock()
	if wait > 0 {
		t.release(slots)
		return nil, wait
	}
	return &Attempt{t: t, slots: slots, known: pair}, 0
}

func (t *Throttle) release(slots []*slot) {
	for _, s := range slots {
		<-s.turn
	}
}

func (t *Throttle) retryAfter(slots []*slot) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	wait := time.Second // busy: about one password check
	now := time.Now()
	for _, s := range slots {
		wait = max(wait, s.until.Sub(now))
	}
	return wait
}

// Done records the outcome: a failure counts against the account and the address, a success
// clears the account only.
func (a *Attempt) Done(ok bool) {
	t := a.t
	t.mu.Lock()
	now := time.Now()
	if ok {
		acct := a.slots[1]
		acct.fails, acct.until = 0, time.Time{}
		if len(t.known) >= maxKnown {
			t.forgetOldestKnown()
		}
		t.known[a.known] = now
	} else {
		for _, s := range a.slots {
			if s.fails > 0 && now.After(s.until) && now.Sub(s.last) > t.cfg.Forget {
				s.fails = 0
			}
			s.fails++
			s.last = now
			if n := s.fails - t.cfg.Free; n > 0 {
				w := t.cfg.Max
				if n <= 30 {
					w = min(t.cfg.Base<<(n-1), t.cfg.Max)
				}
				s.until = now.Add(w)
			}
		}
	}
	t.mu.Unlock()
	t.release(a.slots)
}

func (t *Throttle) forgetOldestKnown() {
	var oldest string
	var at time.Time
	for k, v := range t.known {
		if oldest == "" || v.Before(at) {
			oldest, at = k, v
		}
	}
	delete(t.known, oldest)
}

// sweep forgets slots that are idle, unlocked and quiet (bounded memory whatever names are
// tried). Called with mu held; runs every 256 calls.
func (t *Throttle) sweep(now time.Time) {
	t.calls++
	if t.calls%256 != 0 {
		return
	}
	for k, s := range t.slots {
		if len(s.turn) == 0 && now.After(s.until) && (s.fails == 0 || now.Sub(s.last) > t.cfg.Forget) {
			delete(t.slots, k)
		}
	}
}
