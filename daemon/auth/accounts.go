package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/evidenced/evidenced/store"
)

// UserStore is where accounts persist.
type UserStore interface {
	Users() ([]*store.User, error)
	User(name string) (*store.User, error)
	CreateUser(u *store.User) error
	UpdateUser(name string, fn func(u *store.User, all []*store.User) error) (*store.User, error)
	DeleteUser(name string, check func(u *store.User, all []*store.User) error) error
}

// ErrLastAdmin refuses to leave the appliance without an admin.
var ErrLastAdmin = errors.New("the appliance must keep at least one admin")

// UserInfo is a user as the API and the CLI show it (no hash).
type UserInfo struct {
	Name    string    `json:"name"`
	Role    Role      `json:"role"`
	Created time.Time `json:"created"`
}

// Info describes a stored user.
func Info(u *store.User) UserInfo {
	return UserInfo{Name: u.Name, Role: StoredRole(u.Role), Created: u.Created}
}

// AddUser creates a user; store.ErrExists when the name is taken.
func AddUser(st UserStore, name, password string, role Role) (UserInfo, error) {
	if err := CheckName(name); err != nil {
		return UserInfo{}, err
	}
	h, err := HashPassword(password)
	if err != nil {
		return UserInfo{}, err
	}
	now := time.Now()
	u := &store.User{Name: name, PasswordHash: h, Role: string(role), Created: now, PasswordSet: now}
	if err := st.CreateUser(u); err != nil {
		return UserInfo{}, err
	}
	return Info(u), nil
}

// SetPassword replaces a user's password; the store ends the user's sessions with it.
func SetPassword(st UserStore, name, password string) error {
	h, err := HashPassword(password)
	if err != nil {
		return err
	}
	_, err = st.UpdateUser(name, func(u *store.User, _ []*store.User) error {
		u.PasswordHash, u.PasswordSet = h, time.Now()
		return nil
	})
	return err
}

// SetRole changes a user's role; the last admin cannot become an examiner.
func SetRole(st UserStore, name string, role Role) error {
	_, err := st.UpdateUser(name, func(u *store.User, all []*store.User) error {
		if StoredRole(u.Role) == Admin && role != Admin && admins(all) <= 1 {
			return ErrLastAdmin
		}
		u.Role = string(role)
		return nil
	})
	return err
}

// RemoveUser removes a user and its sessions; the last admin cannot be removed.
func RemoveUser(st UserStore, name string) error {
	return st.DeleteUser(name, func(u *store.User, all []*store.User) error {
		if StoredRole(u.Role) == Admin && admins(all) <= 1 {
			return ErrLastAdmin
		}
		return nil
	})
}

// Users lists the users.
func Users(st UserStore) ([]UserInfo, error) {
	all, err := st.Users()
	if err != nil {
		return nil, err
	}
	out := make([]UserInfo, 0, len(all))
	for _, u := range all {
		out = append(out, Info(u))
	}
	return out, nil
}

// HasAdmin reports whether any admin exists (the first start creates one when none does).
func HasAdmin(st UserStore) (bool, error) {
	all, err := st.Users()
	if err != nil {
		return false, fmt.Errorf("read users: %w", err)
	}
	return admins(all) > 0, nil
}

func admins(all []*store.User) int {
	n := 0
	for _, u := range all {
		if StoredRole(u.Role) == Admin {
			n++
		}
	}
	return n
}
