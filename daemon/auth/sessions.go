package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/evidenced/evidenced/store"
)

// TokenStore is where sessions persist.
type TokenStore interface {
	Tokens() (map[string]*store.Token, error)
	PutToken(hash string, t *store.Token) error
	DeleteToken(hash string) error
	SyncTokens(lastUsed map[string]time.Time, drop func(*store.Token) bool) (int, error)
}

// SessionConfig bounds sessions.
type SessionConfig struct {
	Idle     time.Duration // unused this long: over (default 1 h)
	Lifetime time.Duration // this long after login: over, however busy (default 12 h)
	Flush    time.Duration // last-used times are written back this often (default 30 s)
}

// Session is a logged-in user.
type Session struct {
	User     string
	Role     Role
	Created  time.Time
	LastUsed time.Time
}

// Sessions is the table of live sessions. Tokens are checked in memory; the store holds only
// their hashes, and last-used times reach it in batches, so a request costs no disk write.
type Sessions struct {
	st  TokenStore
	cfg SessionConfig
	log *slog.Logger

	mu    sync.Mutex
	live  map[string]*Session  // token hash -> session
	dirty map[string]time.Time // token hash -> last use not yet written back
}

// NewSessions loads the stored sessions of the users in roles; sessions of other users, and
// those already over, are dropped.
func NewSessions(st TokenStore, cfg SessionConfig, roles map[string]Role, log *slog.Logger) (*Sessions, error) {
	if cfg.Idle <= 0 {
		cfg.Idle = time.Hour
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = 12 * time.Hour
	}
	if cfg.Flush <= 0 {
		cfg.Flush = 30 * time.Second
	}
	s := &Sessions{st: st, cfg: cfg, log: log, live: map[string]*Session{}, dirty: map[string]time.Time{}}
	toks, err := st.Tokens()
	if err != nil {
		return nil, fmt.Errorf("load sessions: %w", err)
	}
	now := time.Now()
	for h, t := range toks {
		role, ok := roles[t.User]
		if !ok || s.over(t.Created, t.LastUsed, now) {
			continue
		}
		s.live[h] = &Session{User: t.User, Role: role, Created: t.Created, LastUsed: t.LastUsed}
	}
	// Remove what was not loaded.
	if _, err := st.SyncTokens(nil, func(t *store.Token) bool {
		_, ok := roles[t.User]
		return !ok || s.over(t.Created, t.LastUsed, now)
	}); err != nil {
		return nil, fmt.Errorf("remove ended sessions: %w", err)
	}
	return s, nil
}

func (s *Sessions) over(created, lastUsed, now time.Time) bool {
	return now.Sub(lastUsed) > s.cfg.Idle || now.Sub(created) > s.cfg.Lifetime
}

// TokenHash is the key a token is kept under.
func TokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// Create starts a session and returns its token (the only time the token exists in clear).
func (s *Sessions) Create(user string, role Role) (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	tok := hex.EncodeToString(raw)
	now := time.Now()
	h := TokenHash(tok)
	if err := s.st.PutToken(h, &store.Token{User: user, Created: now, LastUsed: now}); err != nil {
		return "", fmt.Errorf("store session: %w", err)
	}
	s.mu.Lock()
	s.live[h] = &Session{User: user, Role: role, Created: now, LastUsed: now}
	s.mu.Unlock()
	return tok, nil
}

// Check returns the session of a token and marks it used; false when there is none or it is over.
func (s *Sessions) Check(tok string) (Session, bool) {
	h := TokenHash(tok)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.live[h]
	if !ok {
		return Session{}, false
	}
	if s.over(se.Created, se.LastUsed, now) {
		delete(s.live, h) // the store copy goes at the next flush
		return Session{}, false
	}
	se.LastUsed = now
	s.dirty[h] = now
	return *se, true
}

// Revoke ends the session of a token (logout).
func (s *Sessions) Revoke(tok string) error {
	h := TokenHash(tok)
	s.mu.Lock()
	delete(s.live, h)
	delete(s.dirty, h)
	s.mu.Unlock()
	if err := s.st.DeleteToken(h); err != nil {
		return fmt.Errorf("remove session: %w", err)
	}
	return nil
}

// DropUser ends every session of a user in memory (the store removes their records in the same
// transaction that changes the password or removes the user).
func (s *Sessions) DropUser(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, se := range s.live {
		if se.User == user {
			delete(s.live, h)
			delete(s.dirty, h)
		}
	}
}

// SetRole changes the role of a user's open sessions.
func (s *Sessions) SetRole(user string, role Role) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, se := range s.live {
		if se.User == user {
			se.Role = role
		}
	}
}

// Len is the number of live sessions.
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// Flush writes last-used times back and removes the sessions that are over, in memory and in
// the store, in one transaction.
func (s *Sessions) Flush() error {
	now := time.Now()
	s.mu.Lock()
	dirty := s.dirty
	s.dirty = map[string]time.Time{}
	for h, se := range s.live {
		if s.over(se.Created, se.LastUsed, now) {
			delete(s.live, h)
			delete(dirty, h)
		}
	}
	s.mu.Unlock()
	// SyncTokens writes the times before it asks drop, so drop sees the latest use.
	n, err := s.st.SyncTokens(dirty, func(t *store.Token) bool { return s.over(t.Created, t.LastUsed, now) })
	if err != nil {
		// Keep the times for the next try.
		s.mu.Lock()
		for h, at := range dirty {
			if _, ok := s.live[h]; ok && at.After(s.dirty[h]) {
				s.dirty[h] = at
			}
		}
		s.mu.Unlock()
		return fmt.Errorf("write sessions back: %w", err)
	}
	if n > 0 {
		s.log.Info("sessions ended", "count", n)
	}
	return nil
}

// Run flushes every Flush interval until ctx ends, then once more.
func (s *Sessions) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Flush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := s.Flush(); err != nil {
				s.log.Error("sessions", "err", err)
			}
			return
		case <-t.C:
			if err := s.Flush(); err != nil {
				s.log.Error("sessions", "err", err)
			}
		}
	}
}
