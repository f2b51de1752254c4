// Package tasks runs the appliance's tasks (physical imaging, logical imaging, diagnostics): it
// creates their records, runs them on their own goroutines (tasks on different drives at the same
// time, one task per drive), publishes progress, checkpoints to the store, pauses and resumes, and
// builds their reports. It knows the HAL, the engines and the store; the HTTP layer sits above it.
package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/recovery"
	"github.com/evidenced/evidenced/imaging/pipeline"
	"github.com/evidenced/evidenced/imaging/target"
	"github.com/evidenced/evidenced/internal/errkind"
	"github.com/evidenced/evidenced/store"
)

// States and steps as the contract names them.
const (
	StatePending    = "pending"
	StateInProgress = "in-progress"
	StatePaused     = "paused"
	StateCompleted  = "completed"
	StateFailed     = "failed"
	StateStopped    = "stopped"
)

// Kinds of task.
const (
	KindImage    = "image"
	KindLogical  = "logical"
	KindDiagnose = "diagnose"
)

// The manager's errors are of the kinds in internal/errkind, where they are documented (the API
// answers each kind with its status); these sentinels match every error of their kind (errors.Is).
var (
	ErrBusy       error = errkind.Busy
	ErrNotFound   error = errkind.NotFound
	ErrConflict   error = errkind.Conflict
	ErrBadRequest error = errkind.BadRequest
)

// Config of the manager.
type Config struct {
	ApplianceID     string
	TargetRoots     []string
	Software        string // "evidenced 0.1"
	CheckpointEvery time.Duration
	// Freeze is the freezing-drive recovery of image tasks (zero: the defaults, 10 s timeout).
	Freeze recovery.Config
	// TimeZone is the zone reports show times in (with UTC beside); nil: the system's local zone.
	TimeZone *time.Location
	// OpenTarget opens a target folder; nil means target.Open.
	OpenTarget func(ctx context.Context, spec target.Spec) (target.Target, error)
	// Background runs the imaging pipelines' hashes and encoders below the API's priority (nil:
	// as ordinary goroutines). The daemon has one for the process.
	Background *pipeline.Background
}

// Manager owns the running tasks.
type Manager struct {
	st    *store.Store
	board hal.Board
	log   *slog.Logger
	cfg   Config

	mu      sync.Mutex
	running map[string]*run   // task key -> run
	busy    map[string]string // port -> task key
	wg      sync.WaitGroup
	feed    feed
}

type run struct {
	cancel context.CancelCauseFunc
	done   chan struct{}
	live   *live
}

// live is the in-memory progress of a running task.
type live struct {
	mu        sync.Mutex
	bytesDone int64
	total     int64
	started   time.Time
	startDone int64 // bytes done when this run started (resume)
	// stepBase counts the bytes of the steps before the current one (imaging, when verifying):
	// the whole task's progress never goes back when a step starts.
	stepBase int64
	tgt      target.Target // the task's open target, if any; closed when the task ends
}

func (l *live) set(done int64) {
	l.mu.Lock()
	l.bytesDone = done
	l.mu.Unlock()
}

// nextStep starts a step of total bytes after the current one, which counts as done.
func (l *live) nextStep(total int64) {
	l.mu.Lock()
	l.stepBase += l.total
	l.bytesDone, l.total, l.startDone, l.started = 0, total, 0, time.Now()
	l.mu.Unlock()
}

// Causes of a cancelled run.
var (
	errPause    = errors.New("paused by request")
	errStop     = errors.New("stopped by request")
	errShutdown = errors.New("daemon shutting down")
)

// New starts a manager. Tasks left in progress by a crash or power loss are marked paused (imaging,
// resumable from their last checkpoint) or stopped (others).
func New(st *store.Store, board hal.Board, log *slog.Logger, cfg Config) (*Manager, error) {
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 3 * time.Second
	}
	if cfg.OpenTarget == nil {
		roots := cfg.TargetRoots
		cfg.OpenTarget = func(ctx context.Context, spec target.Spec) (target.Target, error) {
			return target.Open(ctx, spec, target.Config{Roots: roots})
		}
	}
	m := &Manager{st: st, board: board, log: log, cfg: cfg, running: map[string]*run{}, busy: map[string]string{}}
	all, err := st.Tasks()
	if err != nil {
		return nil, fmt.Errorf("load tasks: %w", err)
	}
	for _, t := range all {
		if t.State != StateInProgress && t.State != StatePending {
			continue
		}
		if t, err = st.Task(t.Key); err != nil { // with its checkpoint
			return nil, fmt.Errorf("recover task: %w", err)
		}
		if t.Kind == KindImage || (pausable(t) && t.Checkpoint != nil) {
			t.State = StatePaused
			t.Message = "interrupted (power loss or restart); resume with /api/resume-task"
			// From the restart: when the power went is not known, so the time it was off counts
			// as working time in the report.
			t.Pauses = append(t.Pauses, store.Pause{From: time.Now()})
		} else {
			t.State = StateStopped
			t.Message = "interrupted (power loss or restart)"
			t.Completed = time.Now()
		}
		t.Log = append(t.Log, stamp(t.Message))
		if err := st.PutTask(t); err != nil {
			return nil, fmt.Errorf("recover task %s: %w", t.Key, err)
		}
		log.Info("recovered interrupted task", "task", t.Key, "state", t.State)
	}
	return m, nil
}

// Close stops every running task (imaging tasks pause, so they can be resumed after restart).
func (m *Manager) Close() {
	m.mu.Lock()
	for _, r := range m.running {
		r.cancel(errShutdown)
	}
	m.mu.Unlock()
	m.wg.Wait()
}

func stamp(msg string) string { return time.Now().Format("2006-01-02 15:04:05") + "  " + msg }

// returnKey gives back the task number of a key that was never used (its start was refused),
// so that numbers count the tasks that exist.
func (m *Manager) returnKey(kind string, id hal.Identity, n int) {
	if err := m.st.ReturnTaskN(kind, id.Model, id.Serial, n); err != nil {
		m.log.Error("return task number", "kind", kind, "model", id.Model, "serial", id.Serial, "err", err)
	}
}

// NewKey makes a task key: <task>_<n>_<model with spaces as %20>_<serial>_<appliance id>_<uuid v4>.
func (m *Manager) NewKey(kind string, id hal.Identity) (string, int, error) {
	n, err := m.st.NextTaskN(kind, id.Model, id.Serial)
	if err != nil {
		return "", 0, fmt.Errorf("task counter: %w", err)
	}
	model := strings.ReplaceAll(id.Model, " ", "%20")
	return fmt.Sprintf("%s_%d_%s_%s_%s_%s", kind, n, model, id.Serial, m.cfg.ApplianceID, uuid.NewString()), n, nil
}

// Task returns a task by key, accepting it percent-encoded or decoded, with its checkpoint and
// report section.
func (m *Manager) Task(key string) (*store.Task, error) { return m.find(key, m.st.Task) }

// TaskRecord returns a task by key as Task does, without its checkpoint and report section
// (store.TaskRecord): for status answers, which read neither.
func (m *Manager) TaskRecord(key string) (*store.Task, error) { return m.find(key, m.st.TaskRecord) }

func (m *Manager) find(key string, read func(string) (*store.Task, error)) (*store.Task, error) {
	for _, k := range keyForms(key) {
		t, err := read(k)
		if err == nil {
			return t, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	return nil, errkind.New(errkind.NotFound, "no task with key %q", key)
}

func keyForms(key string) []string {
	forms := []string{key, strings.ReplaceAll(key, " ", "%20")}
	if u, err := url.PathUnescape(key); err == nil {
		forms = append(forms, strings.ReplaceAll(u, " ", "%20"))
	}
	return forms
}

// Tasks lists every task, newest first.
func (m *Manager) Tasks() ([]*store.Task, error) { return m.st.Tasks() }

// LatestFor returns the newest task of a drive, without its checkpoint and report section.
func (m *Manager) LatestFor(model, serial string) (*store.Task, error) {
	all, err := m.st.Tasks()
	if err != nil {
		return nil, err
	}
	for _, t := range all {
		if t.Model == model && t.Serial == serial {
			return t, nil
		}
	}
	return nil, errkind.New(errkind.NotFound, "no task for drive %s %s", model, serial)
}

// BusyTask returns the key of the task running on a port, or "".
func (m *Manager) BusyTask(port string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.busy[port]
}

// Status is where a task stands.
type Status struct {
	BytesDone, BytesTotal int64   // of the current step
	Rate                  float64 // bytes/s of the current step, 0 when not running
	// Progress is the whole task's percent (imaging and verification weighted by bytes), never
	// decreasing while the task runs; StepProgress the current step's.
	Progress, StepProgress string
}

// Status returns a task's progress, live for a running task.
func (m *Manager) Status(t *store.Task) Status {
	st := Status{BytesDone: t.BytesDone, BytesTotal: t.BytesTotal}
	var base int64
	m.mu.Lock()
	r := m.running[t.Key]
	m.mu.Unlock()
	if r != nil {
		l := r.live
		l.mu.Lock()
		st.BytesDone, st.BytesTotal, base = l.bytesDone, l.total, l.stepBase
		if el := time.Since(l.started).Seconds(); el > 0.2 {
			st.Rate = float64(l.bytesDone-l.startDone) / el
		}
		l.mu.Unlock()
	}
	// Work units: the source's bytes once per step. Image tasks that verify read them twice.
	size := st.BytesTotal
	if base > 0 {
		size = base
	}
	work := size
	if t.Kind == KindImage && t.Options.Verify {
		work = 2 * size
	}
	st.StepProgress = percent(st.BytesDone, st.BytesTotal)
	st.Progress = percent(base+st.BytesDone, work)
	if t.State == StateCompleted {
		st.Progress, st.StepProgress = "100", "100"
	} else if st.Progress == "100" {
		st.Progress = "99" // the last step's end is not the task's
	}
	return st
}

// startingPrefix marks a port claimed by a task that has no key yet.
const startingPrefix = "starting-"

// Starting reports whether a busy port's key is the placeholder of a task still starting.
func Starting(key string) bool { return strings.HasPrefix(key, startingPrefix) }

// claim marks a port busy with key; ErrBusy if it already is. A port claimed by a task still
// starting is waited for (a few seconds at most), so that the refusal names the real task key,
// or the port is taken once that start fails.
func (m *Manager) claim(port, key string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.mu.Lock()
		k := m.busy[port]
		if k == "" {
			m.busy[port] = key
			m.mu.Unlock()
			return nil
		}
		m.mu.Unlock()
		if !Starting(k) {
			return errkind.New(errkind.Busy, "port %s is busy with task %s", port, k)
		}
		if time.Now().After(deadline) {
			return errkind.New(errkind.Busy, "port %s is busy starting another task", port)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// idleHoldKey marks a port held while the idle watcher powers it off. It counts as a task still
// starting: a task started meanwhile waits for the power-off (claim waits a few seconds for such
// keys), then powers the port on again as it would have anyway.
const idleHoldKey = startingPrefix + "idle-power-off"

// HoldIdle takes a free port for an idle power-off; ok false when a task holds it. release frees it.
func (m *Manager) HoldIdle(port string) (release func(), ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.busy[port] != "" {
		return nil, false
	}
	m.busy[port] = idleHoldKey
	return func() { m.freePort(port, idleHoldKey) }, true
}

func (m *Manager) release(port, key string) {
	m.freePort(port, key)
	m.mu.Lock()
	delete(m.running, key)
	m.mu.Unlock()
}

// freePort marks a port no longer busy with key.
func (m *Manager) freePort(port, key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.busy[port] == key {
		delete(m.busy, port)
	}
}

// launch runs fn for task t on its own goroutine.
func (m *Manager) launch(t *store.Task, fn func(ctx context.Context, t *store.Task, l *live) error) {
	ctx, cancel := context.WithCancelCause(context.Background())
	l := &live{started: time.Now(), total: t.BytesTotal, bytesDone: t.BytesDone, startDone: t.BytesDone}
	r := &run{cancel: cancel, done: make(chan struct{}), live: l}
	m.mu.Lock()
	m.running[t.Key] = r
	m.mu.Unlock()
	m.changed(t.Key)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		err := fn(ctx, t, l)
		cancel(nil)
		m.finish(t, l, err, context.Cause(ctx))
		// The final state is stored last: when check-task says the task ended, its report is
		// written, its target closed and its port free for the next task.
		if l.tgt != nil {
			l.tgt.Close()
		}
		m.mu.Lock()
		if m.busy[t.Port] == t.Key {
			delete(m.busy, t.Port)
		}
		m.mu.Unlock()
		if err := m.st.PutTask(t); err != nil {
			m.log.Error("store task", "task", t.Key, "err", err)
		}
		m.log.Info("task ended", "task", t.Key, "state", t.State, "message", t.Message)
		m.release(t.Port, t.Key) // drops the live progress once the stored record is final
		close(r.done)
		m.changed(t.Key)
		m.returnMemory()
	}()
}

// returnMemory gives the heap the tasks no longer use back to the system once the last running
// task has ended. Go returns freed heap only slowly: after four E01 tasks ended, 290 MB of it
// stayed idle but resident, and four more tasks, whose buffers no longer fit the holes the first
// ones left, took the daemon's peak RSS from 188-196 to 294-300 MiB (sim board, 2 GiB corpus).
// Forcing it costs one collection of what little is live between tasks.
func (m *Manager) returnMemory() {
	m.mu.Lock()
	idle := len(m.running) == 0
	m.mu.Unlock()
	if idle {
		debug.FreeOSMemory()
	}
}

// finish sets how a run ended and writes its report; launch stores the final record.
func (m *Manager) finish(t *store.Task, l *live, err, cause error) {
	l.mu.Lock()
	t.BytesDone = l.bytesDone
	l.mu.Unlock()
	now := time.Now()
	switch {
	case err == nil:
		// The document's word; what else there is to say is in Details.
		t.State, t.Message, t.Completed = StateCompleted, "completed", now
	case errors.Is(cause, errPause) || errors.Is(cause, errShutdown):
		if pausable(t) && (t.Checkpoint != nil || verifyOnly(t)) {
			t.State, t.Message = StatePaused, "paused at "+percent(t.BytesDone, t.BytesTotal)+"%"
			t.Pauses = append(t.Pauses, store.Pause{From: now})
		} else {
			t.State, t.Message, t.Completed = StateStopped, "stopped", now
		}
	case errors.Is(cause, errStop):
		t.State, t.Message, t.Completed = StateStopped, "stopped", now
	default:
		t.State, t.Message, t.Completed = StateFailed, err.Error(), now
		if n := badCount(t.BadSectors); n > 0 {
			t.Message += fmt.Sprintf("; %d unreadable sectors", n)
		}
	}
	t.Log = append(t.Log, stamp("task "+t.State+": "+joinDetails(t.Message, t.Details)))
	if l.tgt != nil && t.Kind != KindDiagnose {
		recordImageFiles(t, l.tgt)
	}
	// The report is on the target, and the drive's port free, before check-task says the task ended.
	m.writeReport(t, l.tgt)
}

// joinDetails appends a detail to a "; "-separated list.
func joinDetails(list, more string) string {
	if list == "" || more == "" {
		return list + more
	}
	return list + "; " + more
}

func badCount(rs []store.SectorRange) int64 {
	var n int64
	for _, r := range rs {
		n += r.Count
	}
	return n
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func percent(done, total int64) string {
	if total <= 0 {
		return "0"
	}
	return fmt.Sprint(done * 100 / total)
}

// Stop pauses an imaging task (resumable) or stops any other task.
func (m *Manager) Stop(key string) (string, error) {
	t, err := m.Task(key)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	r := m.running[t.Key]
	m.mu.Unlock()
	if r == nil {
		if t.State == StatePending {
			t.State, t.Completed = StateStopped, time.Now()
			defer m.changed(t.Key)
			return t.State, m.st.PutTask(t)
		}
		return "", errkind.New(errkind.Conflict, "task %s is already %s", t.Key, t.State)
	}
	cause := errStop
	if pausable(t) {
		cause = errPause
	}
	r.cancel(cause)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		return "", fmt.Errorf("task %s did not stop within 30 s", t.Key)
	}
	t, err = m.st.Task(t.Key)
	if err != nil {
		return "", err
	}
	return t.State, nil
}

func (m *Manager) save(t *store.Task) {
	if err := m.st.PutTask(t); err != nil {
		m.log.Error("store task", "task", t.Key, "err", err)
	}
	m.changed(t.Key)
}

func (m *Manager) logf(t *store.Task, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	t.Log = append(t.Log, stamp(msg))
	// port and serial become journal fields (PORT=, SERIAL=) beside TASK_KEY=.
	m.log.Info(msg, "task", t.Key, "port", t.Port, "serial", t.Serial)
}
