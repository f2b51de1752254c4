// Package store keeps everything the appliance must remember across restarts and power loss: tasks,
// cases and their evidence, users, tokens (hashed), port modes, settings and filter presets, and an
// audit log. It is a thin typed layer over one bbolt file; every change is one transaction, fsynced
// on commit, so a kill -9 at any moment leaves either the old or the new state.
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/internal/errkind"
)

// SchemaVersion is the layout this code reads and writes. Older files are migrated on Open.
const SchemaVersion = 2

var (
	bMeta     = []byte("meta")
	bTasks    = []byte("tasks")
	bCounters = []byte("counters")
	bCases    = []byte("cases")
	bUsers    = []byte("users")
	bTokens   = []byte("tokens")
	bPorts    = []byte("ports")
	bSettings = []byte("settings")
	bPresets  = []byte("presets")
	bAudit    = []byte("audit")
	// A task's resume state and report section live beside its record: they can be megabytes
	// (a logical task's file tree), and check-task, which reads the record on every poll, must
	// not parse them.
	bCheckpoints = []byte("checkpoints")
	bExtras      = []byte("report-extras")
	// bAuditChain holds the hash-chained audit trail (audit.go); bAudit, schema 2's unchained log,
	// is kept as it was and no longer written.
	bAuditChain = []byte("audit-chain")
	allBkts     = [][]byte{bMeta, bTasks, bCounters, bCases, bUsers, bTokens, bPorts, bSettings, bPresets, bAudit, bCheckpoints, bExtras, bAuditChain}
)

// openWait is how long Open waits for another process's lock on the file.
const openWait = 2 * time.Second

// The store's errors are of the kinds in internal/errkind, where they are documented; these
// sentinels match every error of their kind (errors.Is).
var (
	// ErrNotFound: a record does not exist.
	ErrNotFound error = errkind.NotFound
	// ErrExists: a unique record already exists.
	ErrExists error = errkind.Exists
)

// Store is an open state file.
type Store struct {
	db *bolt.DB
}

// Open opens the state file at path, or creates it when the file does not exist. An existing file is
// checked first (Check) and a damaged one is refused with a *DamagedError, never written to: a
// 0-byte or short file is damage, not a new store.
func Open(path string) (*Store, error) {
	// Wait as long for a daemon that is still shutting down as the read-write open below does.
	db, err := openChecked(path, openWait)
	if err == nil {
		err = db.Close()
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := create(path); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: openWait})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{db: db}
	if err := db.Update(initBuckets); err != nil {
		db.Close()
		return nil, fmt.Errorf("init store: %w", err)
	}
	return s, nil
}

// initBuckets creates the buckets a new file lacks and migrates an older schema.
func initBuckets(tx *bolt.Tx) error {
	for _, b := range allBkts {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bMeta)
	v := meta.Get([]byte("schema"))
	switch {
	case v == nil:
		return meta.Put([]byte("schema"), u64(SchemaVersion))
	case len(v) != 8:
		return fmt.Errorf("store schema record is %d bytes, not 8", len(v))
	case binary.BigEndian.Uint64(v) > SchemaVersion:
		return fmt.Errorf("store schema %d is newer than this daemon's %d", binary.BigEndian.Uint64(v), SchemaVersion)
	case binary.BigEndian.Uint64(v) == 1:
		if err := migrate1to2(tx); err != nil {
			return fmt.Errorf("migrate store to schema 2: %w", err)
		}
		return meta.Put([]byte("schema"), u64(SchemaVersion))
	}
	return nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func u64(n uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, n)
	return b
}

func put(tx *bolt.Tx, bucket []byte, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", bucket, key, err)
	}
	return tx.Bucket(bucket).Put([]byte(key), data)
}

func get(tx *bolt.Tx, bucket []byte, key string, v any) error {
	data := tx.Bucket(bucket).Get([]byte(key))
	if data == nil {
		return ErrNotFound
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s/%s: %w", bucket, key, err)
	}
	return nil
}

// ---- tasks

// SectorRange is a run of unreadable sectors.
type SectorRange struct {
	First int64 `json:"first"`
	Count int64 `json:"count"`
}

// Task is the durable record of one task. Credentials are never part of it.
type Task struct {
	Key     string `json:"key"`
	Kind    string `json:"kind"` // image, logical, diagnose
	N       int    `json:"n"`
	Port    string `json:"port"`
	Model   string `json:"model"`
	Serial  string `json:"serial"`
	Size    int64  `json:"size"`
	State   string `json:"state"`
	Step    string `json:"step"`
	Message string `json:"message"`
	// Details say more than Message about how a task ended: unreadable sectors, file errors,
	// the verification ("3 unreadable sectors zero-filled; verified").
	Details    string            `json:"details,omitempty"`
	Verified   bool              `json:"verified,omitempty"` // the written image was read back and its hashes matched
	BytesDone  int64             `json:"bytesDone"`
	BytesTotal int64             `json:"bytesTotal"`
	Created    time.Time         `json:"created"`
	Started    time.Time         `json:"started"`
	Completed  time.Time         `json:"completed"`
	Target     string            `json:"target"` // display path of the image
	Report     string            `json:"report"` // display path of Report.html
	ReportDir  string            `json:"reportDir"`
	Hashes     map[string]string `json:"hashes,omitempty"`
	// Options are the task's typed options (credentials are never part of them).
	Options options.Task `json:"options"`
	// TargetBase is the image's file name without extension, fixed when the task starts.
	TargetBase string `json:"targetBase,omitempty"`
	// AcquiredAt is when the acquisition started: segments written after a resume carry it too.
	AcquiredAt time.Time     `json:"acquiredAt,omitzero"`
	CaseID     string        `json:"caseId,omitempty"`
	EvidenceID string        `json:"evidenceId,omitempty"`
	BadSectors []SectorRange `json:"badSectors,omitempty"`
	// Owner is the user who started the task ("" without user management); Shared lets every
	// examiner see and stop it.
	Owner  string `json:"owner,omitempty"`
	Shared bool   `json:"shared,omitempty"`
	// Checkpoint is the engine's resume state (opaque to the store; kept beside the record).
	Checkpoint json.RawMessage `json:"-"`
	// Log is the task's log, kept so /api/report works for any target, including shares that are gone.
	Log []string `json:"log,omitempty"`
	// ReportExtra is the kind-specific part of the task's report (a diagnose's SMART table and
	// surface map, a logical task's volumes and file list) as the report package's JSON, kept
	// beside the record; records from before typed reports hold an HTML section here.
	ReportExtra string `json:"-"`

	// What the report says besides the above, recorded as the task runs.
	// Firmware, Bus, SectorSize and NativeSize are the rest of the source drive's identity
	// (NativeSize > Size: a Host Protected Area hides the difference).
	Firmware   string `json:"firmware,omitempty"`
	Bus        string `json:"bus,omitempty"`
	SectorSize int    `json:"sectorSize,omitempty"`
	NativeSize int64  `json:"nativeSize,omitempty"`
	// WriteBlock says how the source was protected from writes while the task read it.
	WriteBlock string `json:"writeBlock,omitempty"`
	// Pauses are the times the task stood paused (the last one open, To zero, while it is).
	Pauses []Pause `json:"pauses,omitempty"`
	// VerifyStarted is when the verification re-read began; VerifyHashes what it computed.
	VerifyStarted time.Time         `json:"verifyStarted,omitzero"`
	VerifyHashes  map[string]string `json:"verifyHashes,omitempty"`
	// ImageFiles are the image's files as written, with their sizes and (raw, AFF4, zip) the
	// hashes of their own bytes.
	ImageFiles []ImageFile `json:"imageFiles,omitempty"`
	// Recovery are the steps of a freezing-drive recovery (device resets, power cycles).
	Recovery []string `json:"recovery,omitempty"`
}

// Pause is a span a task stood paused; To is zero while it still does.
type Pause struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to,omitzero"`
}

// Paused is how much of the span from..to the task stood paused.
func (t *Task) Paused(from, to time.Time) time.Duration {
	var d time.Duration
	for _, p := range t.Pauses {
		end := p.To
		if end.IsZero() {
			end = to
		}
		if a, b := maxTime(p.From, from), minTime(end, to); b.After(a) {
			d += b.Sub(a)
		}
	}
	return d
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ImageFile is one file of a task's image on its target.
type ImageFile struct {
	Name   string            `json:"name"`
	Size   int64             `json:"size"`
	Hashes map[string]string `json:"hashes,omitempty"`
}

// UnmarshalJSON reads a task record. Records written before the options were typed kept them as
// a map of request parameters ("params") with the derived targetBase, targetType and acquiredAt
// mixed in: they are read into Options, TargetBase and AcquiredAt, and written back typed the
// next time the task is stored.
func (t *Task) UnmarshalJSON(b []byte) error {
	type plain Task // without this method
	var v struct {
		plain
		Options *options.Task     `json:"options"`
		Params  map[string]string `json:"params"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*t = Task(v.plain)
	switch {
	case v.Options != nil:
		t.Options = *v.Options
	case v.Params != nil:
		var d options.Derived
		t.Options, d = options.FromLegacy(t.Kind, v.Params)
		if t.TargetBase == "" {
			t.TargetBase = d.TargetBase
		}
		if t.AcquiredAt.IsZero() {
			t.AcquiredAt = d.AcquiredAt
		}
	}
	return nil
}

// taskV1 reads the fields schema 1 kept inside the task record.
type taskV1 struct {
	Checkpoint  json.RawMessage `json:"checkpoint,omitempty"`
	ReportExtra string          `json:"reportExtra,omitempty"`
}

func migrate1to2(tx *bolt.Tx) error {
	var tasks []*Task
	err := tx.Bucket(bTasks).ForEach(func(k, v []byte) error {
		var t Task
		var old taskV1
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("decode task %s: %w", k, err)
		}
		if err := json.Unmarshal(v, &old); err != nil {
			return fmt.Errorf("decode task %s: %w", k, err)
		}
		t.Checkpoint, t.ReportExtra = old.Checkpoint, old.ReportExtra
		tasks = append(tasks, &t)
		return nil
	})
	if err != nil {
		return err
	}
	for _, t := range tasks {
		if err := putTask(tx, t); err != nil {
			return err
		}
	}
	return nil
}

// PutTask writes a task record with its checkpoint and report section.
func (s *Store) PutTask(t *Task) error {
	return s.db.Update(func(tx *bolt.Tx) error { return putTask(tx, t) })
}

func putTask(tx *bolt.Tx, t *Task) error {
	if err := put(tx, bTasks, t.Key, t); err != nil {
		return err
	}
	for _, side := range []struct {
		bucket []byte
		data   []byte
	}{{bCheckpoints, t.Checkpoint}, {bExtras, []byte(t.ReportExtra)}} {
		b := tx.Bucket(side.bucket)
		var err error
		if len(side.data) == 0 {
			err = b.Delete([]byte(t.Key))
		} else {
			err = b.Put([]byte(t.Key), side.data)
		}
		if err != nil {
			return fmt.Errorf("store task %s: %w", t.Key, err)
		}
	}
	return nil
}

// attach copies a task's checkpoint and report section out of the transaction (bbolt's slices
// are only valid inside it): a copy, not a parse, however large they are.
func attach(tx *bolt.Tx, t *Task) {
	if v := tx.Bucket(bCheckpoints).Get([]byte(t.Key)); v != nil {
		t.Checkpoint = append(json.RawMessage(nil), v...)
	}
	if v := tx.Bucket(bExtras).Get([]byte(t.Key)); v != nil {
		t.ReportExtra = string(v)
	}
}

// Task reads a task record with its checkpoint and report section.
func (s *Store) Task(key string) (*Task, error) { return s.task(key, true) }

// TaskRecord reads a task record without its checkpoint and report section, as Tasks lists them:
// what answering a status poll needs. A running logical task's checkpoint holds its whole file
// tree (megabytes): copied for every poll, 50 pollers of four such tasks spent a sixth of the
// daemon's CPU on it and waited up to 2 s for an answer.
func (s *Store) TaskRecord(key string) (*Task, error) { return s.task(key, false) }

func (s *Store) task(key string, attached bool) (*Task, error) {
	var t Task
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := get(tx, bTasks, key, &t); err != nil {
			return err
		}
		if attached {
			attach(tx, &t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// Tasks lists all task records, newest first, without their checkpoints and report sections
// (Task has them): a listing must not copy megabytes per logical task.
func (s *Store) Tasks() ([]*Task, error) {
	var out []*Task
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bTasks).ForEach(func(k, v []byte) error {
			var t Task
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("decode task %s: %w", k, err)
			}
			out = append(out, &t)
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, err
}

// NextTaskN returns the next per-drive counter for kind (0, 1, 2, ...) and increments it.
func (s *Store) NextTaskN(kind, model, serial string) (int, error) {
	var n uint64
	key := []byte(kind + "\x00" + model + "\x00" + serial)
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bCounters)
		if v := b.Get(key); v != nil {
			n = binary.BigEndian.Uint64(v)
		}
		return b.Put(key, u64(n+1))
	})
	return int(n), err
}

// ReturnTaskN gives back counter value n of NextTaskN when it is still the last one handed out
// (a start that was refused after taking it); otherwise it changes nothing.
func (s *Store) ReturnTaskN(kind, model, serial string, n int) error {
	key := []byte(kind + "\x00" + model + "\x00" + serial)
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bCounters)
		if v := b.Get(key); v != nil && binary.BigEndian.Uint64(v) == uint64(n)+1 {
			return b.Put(key, u64(uint64(n)))
		}
		return nil
	})
}

// ---- cases

// Evidence links a drive to a case.
type Evidence struct {
	EvidenceID       string `json:"evidenceId"`
	EvidenceExaminer string `json:"evidenceExaminer"`
	Model            string `json:"model"`
	Serial           string `json:"serial"`
}

// Case is a forensic case.
type Case struct {
	ID               uint64     `json:"-"`
	CaseID           string     `json:"caseId"`
	CaseExaminer     string     `json:"caseExaminer"`
	CaseDescription  string     `json:"caseDescription"`
	CaseLocation     string     `json:"caseLocation"`
	CaseOrganization string     `json:"caseOrganization"`
	Evidence         []Evidence `json:"evidence"`
	Created          time.Time  `json:"-"`
}

type caseRec struct {
	Case
	ID      uint64    `json:"id"`
	Created time.Time `json:"created"`
}

func forCases(tx *bolt.Tx, fn func(*Case) (stop bool, err error)) error {
	c := tx.Bucket(bCases).Cursor()
	// Newest first: ids grow.
	for k, v := c.Last(); k != nil; k, v = c.Prev() {
		var r caseRec
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode case %x: %w", k, err)
		}
		cs := r.Case
		cs.ID, cs.Created = r.ID, r.Created
		stop, err := fn(&cs)
		if err != nil || stop {
			return err
		}
	}
	return nil
}

func putCase(tx *bolt.Tx, c *Case) error {
	data, err := json.Marshal(caseRec{Case: *c, ID: c.ID, Created: c.Created})
	if err != nil {
		return err
	}
	return tx.Bucket(bCases).Put(u64(c.ID), data)
}

// LinkedError says a drive is already evidence in another case.
type LinkedError struct {
	CaseID, Model, Serial string
}

func (e *LinkedError) Error() string {
	return fmt.Sprintf("the drive %s %s is evidence in case %s", e.Model, e.Serial, e.CaseID)
}

// CaseOptions say how CreateCase treats ids and drives already linked.
type CaseOptions struct {
	Unique bool // a case with the same CaseID is ErrExists
	// Move unlinks the drives from the case they are evidence in; without it, a drive linked
	// elsewhere is a *LinkedError.
	Move bool
}

// CreateCase stores a new case. A drive (model+serial) is evidence in one case at a time. An
// empty CaseID gets a generated one, CASE-YYYYMMDD-HHMMSS, with -2, -3 ... appended when that is
// taken: generated ids never collide.
func (s *Store) CreateCase(c *Case, opt CaseOptions) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if c.Created.IsZero() {
			c.Created = time.Now()
		}
		for _, ev := range c.Evidence {
			if opt.Move {
				break
			}
			var linked *LinkedError
			if err := forCases(tx, func(o *Case) (bool, error) {
				for _, e := range o.Evidence {
					if e.Model == ev.Model && e.Serial == ev.Serial {
						linked = &LinkedError{CaseID: o.CaseID, Model: ev.Model, Serial: ev.Serial}
						return true, nil
					}
				}
				return false, nil
			}); err != nil {
				return err
			}
			if linked != nil {
				return linked
			}
		}
		if c.CaseID == "" {
			base := "CASE-" + c.Created.Format("20060102-150405")
			taken := map[string]bool{}
			if err := forCases(tx, func(o *Case) (bool, error) { taken[o.CaseID] = true; return false, nil }); err != nil {
				return err
			}
			c.CaseID = base
			for n := 2; taken[c.CaseID]; n++ {
				c.CaseID = fmt.Sprintf("%s-%d", base, n)
			}
		} else if opt.Unique {
			found := false
			if err := forCases(tx, func(o *Case) (bool, error) {
				found = o.CaseID == c.CaseID
				return found, nil
			}); err != nil {
				return err
			}
			if found {
				return errkind.New(errkind.Exists, "case %q already exists", c.CaseID)
			}
		}
		for _, ev := range c.Evidence {
			if err := unlinkDrive(tx, ev.Model, ev.Serial); err != nil {
				return err
			}
		}
		id, err := tx.Bucket(bCases).NextSequence()
		if err != nil {
			return err
		}
		c.ID = id
		return putCase(tx, c)
	})
}

func unlinkDrive(tx *bolt.Tx, model, serial string) error {
	var changed []*Case
	if err := forCases(tx, func(o *Case) (bool, error) {
		kept := o.Evidence[:0]
		for _, ev := range o.Evidence {
			if ev.Model == model && ev.Serial == serial {
				continue
			}
			kept = append(kept, ev)
		}
		if len(kept) != len(o.Evidence) {
			o.Evidence = kept
			changed = append(changed, o)
		}
		return false, nil
	}); err != nil {
		return err
	}
	for _, o := range changed {
		if err := putCase(tx, o); err != nil {
			return err
		}
	}
	return nil
}

// CaseByID returns the newest case with that CaseID.
func (s *Store) CaseByID(caseID string) (*Case, error) {
	var out *Case
	err := s.db.View(func(tx *bolt.Tx) error {
		return forCases(tx, func(c *Case) (bool, error) {
			if c.CaseID == caseID {
				out = c
				return true, nil
			}
			return false, nil
		})
	})
	if err == nil && out == nil {
		err = ErrNotFound
	}
	return out, err
}

// CaseByDrive returns the case a drive is evidence in, and that evidence entry.
func (s *Store) CaseByDrive(model, serial string) (*Case, *Evidence, error) {
	var out *Case
	var ev *Evidence
	err := s.db.View(func(tx *bolt.Tx) error {
		return forCases(tx, func(c *Case) (bool, error) {
			for i := range c.Evidence {
				if c.Evidence[i].Model == model && c.Evidence[i].Serial == serial {
					out, ev = c, &c.Evidence[i]
					return true, nil
				}
			}
			return false, nil
		})
	})
	if err == nil && out == nil {
		err = ErrNotFound
	}
	return out, ev, err
}

// UpdateCase applies fn to the newest case with caseID and stores the result.
func (s *Store) UpdateCase(caseID string, fn func(*Case) error) (*Case, error) {
	var out *Case
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := forCases(tx, func(c *Case) (bool, error) {
			if c.CaseID == caseID {
				out = c
				return true, nil
			}
			return false, nil
		}); err != nil {
			return err
		}
		if out == nil {
			return ErrNotFound
		}
		if err := fn(out); err != nil {
			return err
		}
		return putCase(tx, out)
	})
	return out, err
}

// Cases lists all cases, newest first.
func (s *Store) Cases() ([]*Case, error) {
	var out []*Case
	err := s.db.View(func(tx *bolt.Tx) error {
		return forCases(tx, func(c *Case) (bool, error) { out = append(out, c); return false, nil })
	})
	return out, err
}

// ---- ports, settings, presets

// SetPortMode remembers a port's Source switch.
func (s *Store) SetPortMode(port, mode string) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bPorts).Put([]byte(port), []byte(mode)) })
}

// PortModes returns the remembered port modes.
func (s *Store) PortModes() (map[string]string, error) {
	out := map[string]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bPorts).ForEach(func(k, v []byte) error { out[string(k)] = string(v); return nil })
	})
	return out, err
}

// Setting reads an appliance setting into v (ErrNotFound when unset).
func (s *Store) Setting(name string, v any) error {
	return s.db.View(func(tx *bolt.Tx) error { return get(tx, bSettings, name, v) })
}

// PutSetting writes an appliance setting.
func (s *Store) PutSetting(name string, v any) error {
	return s.db.Update(func(tx *bolt.Tx) error { return put(tx, bSettings, name, v) })
}

// PutPreset stores a named preset (raw JSON of the caller's type).
func (s *Store) PutPreset(name string, v any) error {
	return s.db.Update(func(tx *bolt.Tx) error { return put(tx, bPresets, name, v) })
}

// Preset reads a named preset into v.
func (s *Store) Preset(name string, v any) error {
	return s.db.View(func(tx *bolt.Tx) error { return get(tx, bPresets, name, v) })
}

// DeletePreset removes a named preset; ErrNotFound when there is none.
func (s *Store) DeletePreset(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bPresets)
		if b.Get([]byte(name)) == nil {
			return ErrNotFound
		}
		return b.Delete([]byte(name))
	})
}

// PresetNames lists the stored presets in name order.
func (s *Store) PresetNames() ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bPresets).ForEach(func(k, _ []byte) error { out = append(out, string(k)); return nil })
	})
	return out, err
}

// RawDump returns every key/value of every bucket, for tests that prove secrets are not stored.
func (s *Store) RawDump() ([]byte, error) {
	var buf bytes.Buffer
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, name := range allBkts {
			if err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				buf.Write(k)
				buf.WriteByte('=')
				buf.Write(v)
				buf.WriteByte('\n')
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	return buf.Bytes(), err
}
