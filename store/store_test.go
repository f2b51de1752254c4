package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/formats/digest"
	"github.com/evidenced/evidenced/imaging/options"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTasksSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := open(t, path)
	now := time.Now()
	for i, k := range []string{"a", "b", "c"} {
		if err := s.PutTask(&Task{Key: k, Kind: "image", State: "completed", Created: now.Add(time.Duration(i) * time.Second),
			Hashes: map[string]string{"MD5": "x" + k}}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = open(t, path)
	defer s.Close()
	got, err := s.Tasks()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Key != "c" || got[2].Key != "a" {
		t.Fatalf("tasks not newest first after reopen: %+v", got)
	}
	tk, err := s.Task("b")
	if err != nil || tk.Hashes["MD5"] != "xb" {
		t.Fatalf("task b: %+v %v", tk, err)
	}
	if _, err := s.Task("zz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing task: %v", err)
	}
}

func TestTaskCounterPerDriveAndKind(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "s.db"))
	defer s.Close()
	seq := func(kind, m, sn string) int {
		n, err := s.NextTaskN(kind, m, sn)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if a, b, c, d := seq("image", "M", "S1"), seq("image", "M", "S1"), seq("diagnose", "M", "S1"), seq("image", "M", "S2"); a != 0 || b != 1 || c != 0 || d != 0 {
		t.Fatalf("counters %d %d %d %d, want 0 1 0 0", a, b, c, d)
	}
}

func TestCases(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "s.db"))
	defer s.Close()
	c1 := &Case{CaseID: "C1", CaseExaminer: "ann", Evidence: []Evidence{{EvidenceID: "E1", Model: "M", Serial: "S"}}}
	if err := s.CreateCase(c1, CaseOptions{Unique: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCase(&Case{CaseID: "C1"}, CaseOptions{Unique: true}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate unique case: %v", err)
	}
	if err := s.CreateCase(&Case{CaseID: "C1", CaseDescription: "second"}, CaseOptions{}); err != nil {
		t.Fatalf("non-unique case: %v", err)
	}
	c, err := s.CaseByID("C1")
	if err != nil || c.CaseDescription != "second" {
		t.Fatalf("newest C1: %+v %v", c, err)
	}
	lc, ev, err := s.CaseByDrive("M", "S")
	if err != nil || lc.CaseExaminer != "ann" || ev.EvidenceID != "E1" {
		t.Fatalf("case by drive: %+v %+v %v", lc, ev, err)
	}
	// Without Move, a drive linked elsewhere is refused, naming the case; nothing is stored.
	var linked *LinkedError
	if err := s.CreateCase(&Case{CaseID: "C3", Evidence: []Evidence{{EvidenceID: "E9", Model: "M", Serial: "S"}}}, CaseOptions{Unique: true}); !errors.As(err, &linked) || linked.CaseID != "C1" {
		t.Fatalf("drive linked to C1 moved without move: %v", err)
	}
	if _, err := s.CaseByID("C3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused case stored: %v", err)
	}
	// Generated ids within one second never collide.
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.Local)
	ids := map[string]bool{}
	for range 3 {
		c := &Case{Created: at}
		if err := s.CreateCase(c, CaseOptions{Unique: true}); err != nil {
			t.Fatal(err)
		}
		ids[c.CaseID] = true
	}
	if !ids["CASE-20261130-120000"] || !ids["CASE-20261130-120000-2"] || !ids["CASE-20261130-120000-3"] {
		t.Fatalf("generated ids: %v", ids)
	}
	// Linking the drive to a new case with Move unlinks it from the old one.
	if err := s.CreateCase(&Case{CaseID: "C2", Evidence: []Evidence{{EvidenceID: "E9", Model: "M", Serial: "S"}}}, CaseOptions{Unique: true, Move: true}); err != nil {
		t.Fatal(err)
	}
	lc, _, _ = s.CaseByDrive("M", "S")
	if lc.CaseID != "C2" {
		t.Fatalf("drive still linked to %s", lc.CaseID)
	}
	up, err := s.UpdateCase("C2", func(c *Case) error { c.CaseLocation = "lab"; return nil })
	if err != nil || up.CaseLocation != "lab" {
		t.Fatalf("update: %+v %v", up, err)
	}
	if _, err := s.UpdateCase("nope", func(*Case) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := open(t, path)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put([]byte("schema"), u64(SchemaVersion+1)) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("a newer schema must be refused, not silently used")
	}
}

// A task's checkpoint and report section are stored beside the record, come back with it from
// Task (not from the Tasks listing nor TaskRecord), and go when cleared.
func TestCheckpointAndExtraBesideTheRecord(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "s.db"))
	defer s.Close()
	big := []byte(`{"items": 3, "l01": {"entries": [` + strings.Repeat(`{"entry": {"path": "p1/x"}},`, 10000) + `{}]}}`)
	tk := &Task{Key: "k", Kind: "logical", State: "paused", Checkpoint: big, ReportExtra: "<h2>Files</h2>"}
	if err := s.PutTask(tk); err != nil {
		t.Fatal(err)
	}
	if err := s.db.View(func(tx *bolt.Tx) error {
		if rec := tx.Bucket(bTasks).Get([]byte("k")); bytes.Contains(rec, []byte("entries")) || bytes.Contains(rec, []byte("Files")) {
			t.Errorf("the task record holds the checkpoint or report section: %.200s", rec)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Task("k")
	if err != nil || !bytes.Equal(got.Checkpoint, big) || got.ReportExtra != tk.ReportExtra {
		t.Fatalf("Task: %v, checkpoint %d bytes, extra %q", err, len(got.Checkpoint), got.ReportExtra)
	}
	// A status read and a listing carry the record only.
	rec, err := s.TaskRecord("k")
	if err != nil || rec.Key != "k" || rec.State != "paused" || rec.Checkpoint != nil || rec.ReportExtra != "" {
		t.Fatalf("TaskRecord: %v %+v", err, rec)
	}
	if _, err := s.TaskRecord("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TaskRecord of no task: %v", err)
	}
	all, err := s.Tasks()
	if err != nil || len(all) != 1 || all[0].Key != "k" || all[0].Checkpoint != nil || all[0].ReportExtra != "" {
		t.Fatalf("Tasks: %v %+v", err, all)
	}
	tk.Checkpoint, tk.ReportExtra = nil, ""
	if err := s.PutTask(tk); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Task("k"); got.Checkpoint != nil || got.ReportExtra != "" {
		t.Fatalf("cleared checkpoint still there: %d bytes", len(got.Checkpoint))
	}
}

// A schema 1 file (checkpoint and report section inside the record) is migrated on open and
// its paused task keeps its checkpoint.
func TestMigrateSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucketIfNotExists(bMeta)
		tasks, _ := tx.CreateBucketIfNotExists(bTasks)
		if err := meta.Put([]byte("schema"), u64(1)); err != nil {
			return err
		}
		return tasks.Put([]byte("img"), []byte(`{"key": "img", "kind": "image", "state": "paused", "checkpoint": {"offset": 1048576}, "reportExtra": "<p>x</p>"}`))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := open(t, path)
	defer s.Close()
	got, err := s.Task("img")
	if err != nil || string(got.Checkpoint) != `{"offset": 1048576}` || got.ReportExtra != "<p>x</p>" || got.State != "paused" {
		t.Fatalf("migrated task: %v %+v", err, got)
	}
	var v []byte
	s.db.View(func(tx *bolt.Tx) error { v = append(v, tx.Bucket(bMeta).Get([]byte("schema"))...); return nil })
	if binary.BigEndian.Uint64(v) != SchemaVersion {
		t.Fatalf("schema after migration: %x", v)
	}
}

// TestLegacyParamsRecord: a record written before the options were typed (a "params" map of API
// parameters with targetBase, targetType and acquiredAt mixed in) reads into typed options and
// derived fields, and is written back typed.
func TestLegacyParamsRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "legacy.db")
	s := open(t, path)
	legacy := []struct {
		key, record string
		check       func(*Task) string
	}{
		{"img", `{"key": "img", "kind": "image", "state": "paused", "params": {"targetFolder": "/srv/t", "targetType": "e01",
			"targetBase": "Disk S1_0", "acquiredAt": "2026-11-30T10:00:00.5Z", "e01Comp": "false", "e01Segment": "2",
			"e01Case": "C-1", "e01Notes": "n", "hashes": "MD5,SHA1", "verify": "false", "retries": "5", "saveReport": "true"}}`,
			func(tk *Task) string {
				o := tk.Options
				if o.Format != options.E01 || o.Target.Folder != "/srv/t" || o.E01.Compression != "none" || o.E01.SegmentGB != 2 ||
					o.Case.Number != "C-1" || o.Case.Notes != "n" || !slices.Equal(o.Hashes, []digest.Name{digest.MD5, digest.SHA1}) || o.Verify ||
					o.Retries != 5 || !o.SaveReport || tk.TargetBase != "Disk S1_0" ||
					!tk.AcquiredAt.Equal(time.Date(2026, 11, 30, 10, 0, 0, 5e8, time.UTC)) {
					return fmt.Sprintf("%+v", tk)
				}
				return ""
			}},
		{"log", `{"key": "log", "kind": "logical", "state": "paused", "params": {"targetFolder": "/srv/t", "targetType": "l01",
			"targetBase": "L", "hashes": "", "compression": "false", "l01Inv": "Ann", "filter": "{\"name\":\"f\",\"extensions\":[\"pl\"]}"}}`,
			func(tk *Task) string {
				o := tk.Options
				if o.Format != options.L01 || o.L01.Compress || len(o.Hashes) != 0 || o.Case.Examiner != "Ann" || o.Filter == nil ||
					o.Filter.Name != "f" || !o.Verify || o.Retries != options.DefaultRetries {
					return fmt.Sprintf("%+v", o)
				}
				return ""
			}},
		{"diag", `{"key": "diag", "kind": "diagnose", "state": "completed", "params": {"reportFolder": "/srv/r"}}`,
			func(tk *Task) string {
				if tk.Options.Report == nil || tk.Options.Report.Folder != "/srv/r" || tk.Options.Format != "" {
					return fmt.Sprintf("%+v", tk.Options)
				}
				return ""
			}},
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		for _, l := range legacy {
			if err := tx.Bucket(bTasks).Put([]byte(l.key), []byte(l.record)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, l := range legacy {
		tk, err := s.Task(l.key)
		if err != nil {
			t.Fatal(err)
		}
		if bad := l.check(tk); bad != "" {
			t.Errorf("legacy %s read as %s", l.key, bad)
		}
		// Stored again, the record is typed; read back, it is the same.
		if err := s.PutTask(tk); err != nil {
			t.Fatal(err)
		}
		var raw []byte
		s.db.View(func(tx *bolt.Tx) error { raw = append(raw, tx.Bucket(bTasks).Get([]byte(l.key))...); return nil })
		if bytes.Contains(raw, []byte(`"params"`)) || !bytes.Contains(raw, []byte(`"options"`)) {
			t.Errorf("%s rewritten without typed options: %s", l.key, raw)
		}
		tk2, err := s.Task(l.key)
		if err != nil {
			t.Fatal(err)
		}
		if bad := l.check(tk2); bad != "" {
			t.Errorf("rewritten %s read as %s", l.key, bad)
		}
	}
	s.Close()
}
