package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// AuditRecord is one entry of the audit trail: one state-changing action. Each record carries
// the hash of the one before it, so an edited, removed or inserted record breaks the chain.
type AuditRecord struct {
	Seq    uint64            `json:"seq"`
	Time   time.Time         `json:"time"`
	User   string            `json:"user,omitempty"`
	Addr   string            `json:"addr,omitempty"`
	Action string            `json:"action"`
	Params map[string]string `json:"params,omitempty"` // never secrets: the caller strips them
	Result string            `json:"result"`
	Task   string            `json:"task,omitempty"` // the task the action concerns
	Prev   string            `json:"prev"`           // hash of the record before ("" for the first)
	Hash   string            `json:"hash"`           // SHA-256 of this record with Hash empty
}

var auditHeadKey = []byte("audit-head")

// hashOf is the record's chain hash: SHA-256 over its JSON with Hash empty (encoding/json writes
// struct fields in order and map keys sorted, so the encoding is canonical).
func (r AuditRecord) hashOf() (string, error) {
	r.Hash = ""
	data, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("encode audit record: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// AppendAudit adds a record at the end of the trail, filling in Seq, Prev and Hash.
func (s *Store) AppendAudit(r *AuditRecord) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bAuditChain)
		r.Prev = ""
		if k, v := b.Cursor().Last(); k != nil {
			var last AuditRecord
			if err := json.Unmarshal(v, &last); err != nil {
				return fmt.Errorf("decode audit record %d: %w", binary.BigEndian.Uint64(k), err)
			}
			r.Prev = last.Hash
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		r.Seq = seq
		// UTC without the monotonic reading: the record must encode the same after a round trip.
		r.Time = r.Time.UTC().Round(0)
		if r.Hash, err = r.hashOf(); err != nil {
			return err
		}
		data, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode audit record: %w", err)
		}
		if err := b.Put(u64(seq), data); err != nil {
			return err
		}
		// The head lets verify notice records cut off the end of the chain.
		return tx.Bucket(bMeta).Put(auditHeadKey, append(u64(seq), []byte(r.Hash)...))
	})
}

// AuditPage returns up to limit records with Seq > after, oldest first, and the Seq to pass as
// after for the next page (0 when this page reaches the end).
func (s *Store) AuditPage(after uint64, limit int) ([]AuditRecord, uint64, error) {
	out := []AuditRecord{}
	var next uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bAuditChain).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil; k, v = c.Next() {
			if len(out) == limit {
				next = out[len(out)-1].Seq
				return nil
			}
			var r AuditRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode audit record %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, next, err
}

// AuditForTask returns the records about one task, oldest first.
func (s *Store) AuditForTask(key string) ([]AuditRecord, error) {
	var out []AuditRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bAuditChain).ForEach(func(k, v []byte) error {
			var r AuditRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode audit record %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if r.Task == key {
				out = append(out, r)
			}
			return nil
		})
	})
	return out, err
}

// AuditBreak names the first record where the chain does not hold.
type AuditBreak struct {
	Seq    uint64 `json:"seq"`
	Reason string `json:"reason"`
}

func (b *AuditBreak) Error() string { return fmt.Sprintf("audit record %d: %s", b.Seq, b.Reason) }

// VerifyAudit walks the trail from the first record and returns how many records hold, and
// the first break (nil when the whole chain holds).
func (s *Store) VerifyAudit() (int, *AuditBreak, error) {
	n := 0
	var brk *AuditBreak
	err := s.db.View(func(tx *bolt.Tx) error {
		prev, want := "", uint64(1)
		c := tx.Bucket(bAuditChain).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			key := binary.BigEndian.Uint64(k)
			var r AuditRecord
			if err := json.Unmarshal(v, &r); err != nil {
				brk = &AuditBreak{key, "not a readable record: " + err.Error()}
				return nil
			}
			h, err := r.hashOf()
			if err != nil {
				return err
			}
			switch {
			case key != want:
				brk = &AuditBreak{want, fmt.Sprintf("missing (the next record is %d)", key)}
			case r.Seq != key:
				brk = &AuditBreak{key, fmt.Sprintf("says it is record %d", r.Seq)}
			case r.Prev != prev:
				brk = &AuditBreak{key, "does not carry the previous record's hash (a record before it was changed, removed or inserted)"}
			case r.Hash != h:
				brk = &AuditBreak{key, "its content does not match its hash (the record was changed)"}
			}
			if brk != nil {
				return nil
			}
			prev, want = r.Hash, want+1
			n++
		}
		if head := tx.Bucket(bMeta).Get(auditHeadKey); len(head) >= 8 {
			seq := binary.BigEndian.Uint64(head[:8])
			switch {
			case seq >= want:
				brk = &AuditBreak{want, fmt.Sprintf("missing: the trail ended at record %d", seq)}
			case string(head[8:]) != prev:
				brk = &AuditBreak{seq, "does not match the hash the trail's end was recorded with (the record was replaced)"}
			}
		}
		return nil
	})
	return n, brk, err
}
