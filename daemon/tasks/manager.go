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
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/imaging/target"
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

// Errors the API maps to statuses.
var (
	ErrBusy       = errors.New("busy")        // 409
	ErrNotFound   = errors.New("not found")   // 404
	ErrConflict   = errors.New("conflict")    // 409
	ErrBadRequest = errors.New("bad request") // 400
)

// Config of the manager.
type Config struct {
	ApplianceID     string
	TargetRoots     []string
	Software        string // "evidenced 0.1"
	CheckpointEvery time.Duration
	// OpenTarget opens a target folder; nil means target.Open.
	OpenTarget func(ctx context.Context, spec target.Spec) (target.Target, error)
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
	startDone int64         // bytes done when this run started (resume)
	tgt       target.Target // the task's open target, if any; closed when the task ends
}

func (l *live) set(done int64) {
	l.mu.Lock()
	l.bytesDone = done
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

// NewKey makes a task key: <task>_<n>_<model with spaces as %20>_<serial>_<appliance id>_<uuid v4>.
func (m *Manager) NewKey(kind string, id hal.Identity) (string, int, error) {
	n, err := m.st.NextTaskN(kind, id.Model, id.Serial)
	if err != nil {
		return "", 0, fmt.Errorf("task counter: %w", err)
	}
	model := strings.ReplaceAll(id.Model, " ", "%20")
	return fmt.Sprintf("%s_%d_%s_%s_%s_%s", kind, n, model, id.Serial, m.cfg.ApplianceID, uuid.NewString()), n, nil
}

// Task returns a task by key, accepting it percent-encoded or decoded.
func (m *Manager) Task(key string) (*store.Task, error) {
	for _, k := range keyForms(key) {
		t, err := m.st.Task(k)
		if err == nil {
			return t, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no task with key %q: %w", key, ErrNotFound)
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

// LatestFor returns the newest task of a drive.
func (m *Manager) LatestFor(model, serial string) (*store.Task, error) {
	all, err := m.st.Tasks()
	if err != nil {
		return nil, err
	}
	for _, t := range all {
		if t.Model == model && t.Serial == serial {
			return m.Task(t.Key)
		}
	}
	return nil, fmt.Errorf("no task for drive %s %s: %w", model, serial, ErrNotFound)
}

// BusyTask returns the key of the task running on a port, or "".
func (m *Manager) BusyTask(port string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.busy[port]
}

// Live returns in-memory progress for a running task: bytes done, total, rate (B/s).
func (m *Manager) Live(key string) (done, total int64, rate float64, ok bool) {
	m.mu.Lock()
	r := m.running[key]
	m.mu.Unlock()
	if r == nil {
		return 0, 0, 0, false
	}
	l := r.live
	l.mu.Lock()
	defer l.mu.Unlock()
	if el := time.Since(l.started).Seconds(); el > 0.2 {
		rate = float64(l.bytesDone-l.startDone) / el
	}
	return l.bytesDone, l.total, rate, true
}

// claim marks a port busy with key; ErrBusy if it already is.
func (m *Manager) claim(port, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k := m.busy[port]; k != "" {
		return fmt.Errorf("port %s is busy with task %s: %w", port, k, ErrBusy)
	}
	m.busy[port] = key
	return nil
}

func (m *Manager) release(port, key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.busy[port] == key {
		delete(m.busy, port)
	}
	delete(m.running, key)
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
		defer m.changed(t.Key) // after release: the port is free when subscribers look
		defer close(r.done)
		defer m.release(t.Port, t.Key)
		defer cancel(nil)
		err := fn(ctx, t, l)
		m.finish(t, l, err, context.Cause(ctx))
		if l.tgt != nil {
			l.tgt.Close()
		}
	}()
}

// finish records how a run ended.
func (m *Manager) finish(t *store.Task, l *live, err, cause error) {
	l.mu.Lock()
	t.BytesDone = l.bytesDone
	l.mu.Unlock()
	now := time.Now()
	switch {
	case err == nil:
		t.State, t.Message, t.Completed = StateCompleted, firstNonEmpty(t.Message, "completed"), now
	case errors.Is(cause, errPause) || errors.Is(cause, errShutdown):
		if pausable(t) && t.Checkpoint != nil {
			t.State, t.Message = StatePaused, "paused at "+percent(t.BytesDone, t.BytesTotal)+"%"
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
	t.Log = append(t.Log, stamp("task "+t.State+": "+t.Message))
	if err := m.st.PutTask(t); err != nil {
		m.log.Error("store task", "task", t.Key, "err", err)
	}
	m.writeReport(t, l.tgt)
	m.log.Info("task ended", "task", t.Key, "state", t.State, "message", t.Message)
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

// Progress is the whole percent of a task.
func Progress(t *store.Task, done, total int64) string {
	if t.State == StateCompleted {
		return "100"
	}
	return percent(done, total)
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
		return "", fmt.Errorf("task %s is already %s: %w", t.Key, t.State, ErrConflict)
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
