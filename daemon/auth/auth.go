// Package auth holds what logging in needs: roles and password hashes, the in-memory session
// table that checks tokens without touching the disk and writes their use back in batches, and
// the login throttle that parallel guessing cannot get around.
package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/crypto/bcrypt"
)

// Role is what a user may do.
type Role string

// Roles: an Admin does everything (users, settings, the audit trail); an Examiner runs tasks and
// cases and sees only their own tasks unless a task is shared.
const (
	Admin    Role = "admin"
	Examiner Role = "examiner"
)

// ParseRole reads a role name, case-insensitively; "" is not a role.
func ParseRole(s string) (Role, error) {
	switch Role(strings.ToLower(strings.TrimSpace(s))) {
	case Admin:
		return Admin, nil
	case Examiner:
		return Examiner, nil
	}
	return "", fmt.Errorf("role %q: accepted values are admin and examiner", s)
}

// StoredRole reads a role from the store: records from before roles existed were all admins.
func StoredRole(s string) Role {
	if r, err := ParseRole(s); err == nil {
		return r
	}
	return Admin
}

// MinPassword is the shortest password accepted.
const MinPassword = 8

// CheckName validates a user name: one word of at most 64 printable characters.
func CheckName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("user name %q: 1 to 64 characters", name)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("user name %q: one word without spaces or control characters", name)
		}
	}
	return nil
}

// HashPassword checks a new password and returns its bcrypt hash.
func HashPassword(password string) ([]byte, error) {
	if len(password) < MinPassword {
		return nil, fmt.Errorf("password too short (at least %d characters)", MinPassword)
	}
	if len(password) > 72 {
		return nil, fmt.Errorf("password too long (at most 72 bytes, bcrypt's limit)")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// NameTag is what logs and audit records show for a user name that matched no account: a short
// hash, because people type passwords into the user name field.
func NameTag(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "sha256:" + hex.EncodeToString(sum[:4])
}
