package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/errkind"
)

// User is an account. Only a password hash is stored.
type User struct {
	Name         string    `json:"name"`
	PasswordHash []byte    `json:"passwordHash"`
	Role         string    `json:"role"` // "admin" or "examiner"; "" (schema 2 records) reads as admin
	Created      time.Time `json:"created"`
	PasswordSet  time.Time `json:"passwordSet,omitempty"`
}

// PutUser creates or replaces a user. Replacing one removes its sessions when the password
// changes: a token must not outlive the password it was given for.
func (s *Store) PutUser(u *User) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		var old User
		if err := get(tx, bUsers, u.Name, &old); err == nil && string(old.PasswordHash) != string(u.PasswordHash) {
			if _, err := deleteTokens(tx, func(t *Token) bool { return t.User == u.Name }); err != nil {
				return err
			}
		}
		return put(tx, bUsers, u.Name, u)
	})
}

// CreateUser stores a new user; ErrExists when the name is taken.
func (s *Store) CreateUser(u *User) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bUsers).Get([]byte(u.Name)) != nil {
			return errkind.New(errkind.Exists, "user %q already exists", u.Name)
		}
		return put(tx, bUsers, u.Name, u)
	})
}

// UpdateUser applies fn to a user and stores the result in one transaction; when the password
// hash changed, the user's sessions are removed in the same transaction.
func (s *Store) UpdateUser(name string, fn func(u *User, all []*User) error) (*User, error) {
	var out User
	err := s.db.Update(func(tx *bolt.Tx) error {
		all, err := users(tx)
		if err != nil {
			return err
		}
		if err := getUser(tx, name, &out); err != nil {
			return err
		}
		oldHash := string(out.PasswordHash)
		if err := fn(&out, all); err != nil {
			return err
		}
		if string(out.PasswordHash) != oldHash {
			if _, err := deleteTokens(tx, func(t *Token) bool { return t.User == name }); err != nil {
				return err
			}
		}
		return put(tx, bUsers, name, &out)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteUser removes a user and its sessions. check sees the user and all users first and may
// refuse (the last admin).
func (s *Store) DeleteUser(name string, check func(u *User, all []*User) error) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		all, err := users(tx)
		if err != nil {
			return err
		}
		var u User
		if err := getUser(tx, name, &u); err != nil {
			return err
		}
		if check != nil {
			if err := check(&u, all); err != nil {
				return err
			}
		}
		if _, err := deleteTokens(tx, func(t *Token) bool { return t.User == name }); err != nil {
			return err
		}
		return tx.Bucket(bUsers).Delete([]byte(name))
	})
}

// getUser reads a user; a missing one is a NotFound error whose text the API shows as it is.
func getUser(tx *bolt.Tx, name string, u *User) error {
	err := get(tx, bUsers, name, u)
	switch {
	case errors.Is(err, ErrNotFound):
		return errkind.New(errkind.NotFound, "user %q does not exist", name)
	case err != nil:
		return fmt.Errorf("user %q: %w", name, err)
	}
	return nil
}

// User reads a user (a NotFound error when there is none).
func (s *Store) User(name string) (*User, error) {
	var u User
	if err := s.db.View(func(tx *bolt.Tx) error { return getUser(tx, name, &u) }); err != nil {
		return nil, err
	}
	return &u, nil
}

// Users lists the users in name order.
func (s *Store) Users() ([]*User, error) {
	var out []*User
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = users(tx)
		return err
	})
	return out, err
}

func users(tx *bolt.Tx) ([]*User, error) {
	var out []*User
	err := tx.Bucket(bUsers).ForEach(func(k, v []byte) error {
		var u User
		if err := json.Unmarshal(v, &u); err != nil {
			return fmt.Errorf("decode user %s: %w", k, err)
		}
		out = append(out, &u)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// Token is a login session, keyed by the hash of the token (the token itself is never stored).
type Token struct {
	User     string    `json:"user"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"lastUsed"`
}

// PutToken stores a session under the token's hash.
func (s *Store) PutToken(hash string, t *Token) error {
	return s.db.Update(func(tx *bolt.Tx) error { return put(tx, bTokens, hash, t) })
}

// Tokens returns every stored session by token hash.
func (s *Store) Tokens() (map[string]*Token, error) {
	out := map[string]*Token{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bTokens).ForEach(func(k, v []byte) error {
			var t Token
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("decode token: %w", err)
			}
			out[string(k)] = &t
			return nil
		})
	})
	return out, err
}

// DeleteToken removes a session (logout); a missing one is not an error.
func (s *Store) DeleteToken(hash string) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bTokens).Delete([]byte(hash)) })
}

// SyncTokens writes back last-used times in one transaction (sessions are checked in memory;
// this is their periodic write-back) and removes the sessions drop says are over. A session
// removed meanwhile (logout, password change) is not recreated. It returns how many were removed.
func (s *Store) SyncTokens(lastUsed map[string]time.Time, drop func(*Token) bool) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		for hash, at := range lastUsed {
			var t Token
			if err := get(tx, bTokens, hash, &t); err != nil {
				continue // gone meanwhile
			}
			if at.After(t.LastUsed) {
				t.LastUsed = at
				if err := put(tx, bTokens, hash, &t); err != nil {
					return err
				}
			}
		}
		var err error
		n, err = deleteTokens(tx, drop)
		return err
	})
	return n, err
}

func deleteTokens(tx *bolt.Tx, drop func(*Token) bool) (int, error) {
	b := tx.Bucket(bTokens)
	var doomed [][]byte
	if err := b.ForEach(func(k, v []byte) error {
		var t Token
		if err := json.Unmarshal(v, &t); err != nil || drop(&t) {
			// An undecodable session can never be used: remove it too.
			doomed = append(doomed, append([]byte(nil), k...))
		}
		return nil
	}); err != nil {
		return 0, err
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return 0, fmt.Errorf("delete token: %w", err)
		}
	}
	return len(doomed), nil
}
