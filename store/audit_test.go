package store

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func auditStore(t *testing.T, n int) *Store {
	t.Helper()
	s := open(t, filepath.Join(t.TempDir(), "s.db"))
	t.Cleanup(func() { s.Close() })
	for i := range n {
		r := &AuditRecord{Time: time.Now(), User: "ex1", Addr: "10.0.0.1", Action: "start-image",
			Params: map[string]string{"source": "SATA1", "n": string(rune('a' + i))}, Result: "200 OK", Task: "k"}
		if err := s.AppendAudit(r); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// rewrite changes the raw record seq (nil data removes it) behind the chain's back.
func rewrite(t *testing.T, s *Store, seq uint64, fn func(r *AuditRecord) bool) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bAuditChain)
		var r AuditRecord
		if err := json.Unmarshal(b.Get(u64(seq)), &r); err != nil {
			return err
		}
		if !fn(&r) {
			return b.Delete(u64(seq))
		}
		data, _ := json.Marshal(r)
		return b.Put(u64(seq), data)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAuditChain(t *testing.T) {
	s := auditStore(t, 5)
	n, brk, err := s.VerifyAudit()
	if err != nil || brk != nil || n != 5 {
		t.Fatalf("intact chain: %d %v %v", n, brk, err)
	}
	recs, next, err := s.AuditPage(0, 3)
	if err != nil || len(recs) != 3 || next != 3 || recs[1].Prev != recs[0].Hash || recs[0].Prev != "" {
		t.Fatalf("page 1: %+v next %d %v", recs, next, err)
	}
	recs, next, _ = s.AuditPage(next, 3)
	if len(recs) != 2 || next != 0 || recs[0].Seq != 4 {
		t.Fatalf("page 2: %+v next %d", recs, next)
	}
	if recs, _ := s.AuditForTask("k"); len(recs) != 5 {
		t.Fatalf("records of the task: %d", len(recs))
	}
	// Reopened: the chain still holds (times and maps encode the same after a round trip).
	path := s.db.Path()
	s.Close()
	s = open(t, path)
	t.Cleanup(func() { s.Close() })
	if _, brk, _ := s.VerifyAudit(); brk != nil {
		t.Fatalf("after reopen: %v", brk)
	}
}

// Each kind of tampering is found, at the record where it happened.
func TestAuditTamper(t *testing.T) {
	for _, c := range []struct {
		name    string
		tamper  func(t *testing.T, s *Store)
		seq     uint64
		message string
	}{
		{"edit a field", func(t *testing.T, s *Store) {
			rewrite(t, s, 3, func(r *AuditRecord) bool { r.User = "mallory"; return true })
		}, 3, "does not match its hash"},
		{"edit and rehash", func(t *testing.T, s *Store) {
			rewrite(t, s, 2, func(r *AuditRecord) bool { r.Result = "409"; r.Hash, _ = r.hashOf(); return true })
		}, 3, "previous record's hash"},
		{"remove one in the middle", func(t *testing.T, s *Store) {
			rewrite(t, s, 2, func(*AuditRecord) bool { return false })
		}, 2, "missing"},
		{"remove the last", func(t *testing.T, s *Store) {
			rewrite(t, s, 5, func(*AuditRecord) bool { return false })
		}, 5, "missing"},
		{"replace the last, rehashed", func(t *testing.T, s *Store) {
			rewrite(t, s, 5, func(r *AuditRecord) bool { r.Action = "nothing"; r.Hash, _ = r.hashOf(); return true })
		}, 5, "trail's end"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := auditStore(t, 5)
			c.tamper(t, s)
			_, brk, err := s.VerifyAudit()
			if err != nil || brk == nil || brk.Seq != c.seq || !strings.Contains(brk.Reason, c.message) {
				t.Fatalf("got %v %v, want record %d: %s", brk, err, c.seq, c.message)
			}
		})
	}
}

func TestUsersAndTokens(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "s.db"))
	defer s.Close()
	now := time.Now()
	if err := s.CreateUser(&User{Name: "a", PasswordHash: []byte("h1"), Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(&User{Name: "a"}); err == nil {
		t.Fatal("created a user twice")
	}
	if err := s.CreateUser(&User{Name: "b", PasswordHash: []byte("h2")}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"t1", "t2"} {
		if err := s.PutToken(h, &Token{User: "a", Created: now, LastUsed: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutToken("t3", &Token{User: "b", Created: now, LastUsed: now}); err != nil {
		t.Fatal(err)
	}
	// A role change keeps the sessions; a password change ends them, in the same transaction.
	if _, err := s.UpdateUser("a", func(u *User, _ []*User) error { u.Role = "examiner"; return nil }); err != nil {
		t.Fatal(err)
	}
	if toks, _ := s.Tokens(); len(toks) != 3 {
		t.Fatalf("role change removed sessions: %d left", len(toks))
	}
	if _, err := s.UpdateUser("a", func(u *User, _ []*User) error { u.PasswordHash = []byte("h3"); return nil }); err != nil {
		t.Fatal(err)
	}
	if toks, _ := s.Tokens(); len(toks) != 1 || toks["t3"] == nil {
		t.Fatalf("after a's password change: %v", toks)
	}
	// Write-back: a later use is stored, an earlier one is not, a removed session is not recreated,
	// and drop removes what it names.
	later := now.Add(time.Minute)
	if _, err := s.SyncTokens(map[string]time.Time{"t3": later, "t1": later}, func(*Token) bool { return false }); err != nil {
		t.Fatal(err)
	}
	toks, _ := s.Tokens()
	if len(toks) != 1 || !toks["t3"].LastUsed.Equal(later) {
		t.Fatalf("after write-back: %+v", toks)
	}
	if n, err := s.SyncTokens(nil, func(tk *Token) bool { return tk.User == "b" }); err != nil || n != 1 {
		t.Fatalf("drop: %d %v", n, err)
	}
	if err := s.DeleteUser("b", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.User("b"); err == nil {
		t.Fatal("removed user still there")
	}
}
