package tasks

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidenced/evidenced/formats/ewf"
	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/imaging/logical"
	"github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/imaging/output"
	"github.com/evidenced/evidenced/imaging/target"
	"github.com/evidenced/evidenced/internal/testenv"
	"github.com/evidenced/evidenced/store"
)

// fakeDisk is a source drive: bytes, a range that fails to read, and a point after which the drive
// is gone.
type fakeDisk struct {
	data          []byte
	badOff, badTo int64        // reads touching [badOff, badTo) fail
	goneAt        atomic.Int64 // reads from this offset on find the drive gone (0: never)
	read          atomic.Int64 // bytes read so far
}

func (d *fakeDisk) ReadAt(p []byte, off int64) (int, error) {
	if g := d.goneAt.Load(); g > 0 && off+int64(len(p)) > g {
		return 0, fmt.Errorf("read at %d: %w", off, hal.ErrGone)
	}
	if off < d.badTo && off+int64(len(p)) > d.badOff {
		n := max(0, int(d.badOff-off))
		copy(p, d.data[off:off+int64(n)])
		d.read.Add(int64(n))
		return n, errors.New("unreadable sector")
	}
	n := copy(p, d.data[off:])
	d.read.Add(int64(n))
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (d *fakeDisk) Close() error     { return nil }
func (d *fakeDisk) Size() int64      { return int64(len(d.data)) }
func (d *fakeDisk) SectorSize() int  { return 512 }
func (d *fakeDisk) file(i int) int64 { return int64(i) << 20 } // file i's content starts here

// fakeFS lays file i out at disk.file(i), read through the run's goneWatch as a file system reads
// the drive. It counts the files opened and never closed at once, which the source lock bounds.
type fakeFS struct {
	src           io.ReaderAt
	open, maxOpen atomic.Int32
	opened        atomic.Int32
}

func (f *fakeFS) Walk(func(logical.Entry) error, func(string, error)) error { return nil }

func (f *fakeFS) Open(e logical.Entry) (io.ReadCloser, error) {
	if strings.HasSuffix(e.Path, "unopenable") {
		return nil, errors.New("corrupt inode")
	}
	n := f.open.Add(1)
	for m := f.maxOpen.Load(); n > m && !f.maxOpen.CompareAndSwap(m, n); m = f.maxOpen.Load() {
	}
	f.opened.Add(1)
	return &fakeFile{Reader: io.NewSectionReader(f.src, int64(e.ID)<<20, e.Size), fs: f}, nil
}

type fakeFile struct {
	io.Reader
	fs *fakeFS
}

func (f *fakeFile) Close() error { f.fs.open.Add(-1); return nil }

// copyHarness is a logical run over fake files into a real L01 in a temporary folder.
type copyHarness struct {
	t     *testing.T
	disk  *fakeDisk
	fsys  *fakeFS
	m     *Manager
	task  *store.Task
	tgt   target.Target
	out   string // the target folder
	spec  output.Spec
	items []logicalItem
	data  map[string][]byte // content by path in the container
}

// newCopyHarness makes n items: a folder, then files of 0-20 KiB with every tenth 40-100 KiB
// (beyond maxFile below: streamed), in a flat folder so the container lists them in copy order.
func newCopyHarness(t *testing.T, n int) *copyHarness {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	out := filepath.Join(dir, "out")
	tgt, err := target.OpenLocal(out, []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	h := &copyHarness{t: t, disk: &fakeDisk{data: make([]byte, n<<20)}, tgt: tgt, out: out, data: map[string][]byte{},
		m:    &Manager{st: st, log: slog.New(slog.DiscardHandler), cfg: Config{CheckpointEvery: time.Hour}},
		task: &store.Task{Key: "logical_test", Port: "SATA1", Kind: KindLogical}}
	h.spec = output.Spec{Options: options.Default(options.L01), Base: "copy", Identity: hal.Identity{Model: "Fake", Serial: "F1"}, Software: "test"}
	rnd := rand.New(rand.NewPCG(7, 8))
	h.items = append(h.items, logicalItem{e: logical.Entry{Path: "v", Dir: true, Mode: fs.ModeDir}, path: "fs-fake/v"})
	for i := 1; i < n; i++ {
		size := rnd.Int64N(20 << 10)
		if i%10 == 0 {
			size = 40<<10 + rnd.Int64N(60<<10)
		}
		if i%37 == 0 {
			size = 0
		}
		content := h.disk.data[h.disk.file(i) : h.disk.file(i)+size]
		for j := range content {
			content[j] = byte(rnd.IntN(16)) // compressible, not constant
		}
		p := fmt.Sprintf("v/f%04d", i)
		h.items = append(h.items, logicalItem{e: logical.Entry{Path: p, Size: size, ID: uint64(i)}, path: "fs-fake/" + p})
		h.data["fs-fake/"+p] = content
	}
	return h
}

// run copies from the task's checkpoint (nil: a new container) until ctx ends or the copy does,
// through wrap's container (nil: the L01 itself), and closes the container.
func (h *copyHarness) run(ctx context.Context, lim prefetchLimits, wrap func(output.Container) output.Container) (*logicalRun, error) {
	h.t.Helper()
	return h.runWith(ctx, lim, wrap, nil)
}

// runWith is run, calling started with the run before the copy begins.
func (h *copyHarness) runWith(ctx context.Context, lim prefetchLimits, wrap func(output.Container) output.Container, started func(*logicalRun)) (*logicalRun, error) {
	h.t.Helper()
	r := &logicalRun{m: h.m, t: h.task, l: &live{}, rd: &goneWatch{Reader: h.disk}, prefetch: lim, volState: map[int]string{}}
	h.fsys = &fakeFS{src: r.rd}
	for _, it := range h.items {
		it.fs = lockedFS{FS: h.fsys, mu: &r.srcMu}
		r.items = append(r.items, it)
	}
	if h.task.Checkpoint != nil {
		var cp logicalCheckpoint
		if err := json.Unmarshal(h.task.Checkpoint, &cp); err != nil {
			h.t.Fatal(err)
		}
		if err := r.reconcile(&cp); err != nil {
			h.t.Fatal(err)
		}
	}
	var err error
	if r.sink, err = output.OpenContainer(h.spec, h.tgt, r.st); err != nil {
		h.t.Fatal(err)
	}
	l01 := r.sink
	if wrap != nil {
		r.sink = wrap(l01)
	}
	if started != nil {
		started(r)
	}
	cerr := r.copyAll(ctx)
	if err := l01.Close(); err != nil {
		h.t.Fatal(err)
	}
	return r, cerr
}

// check opens the finished L01 with our reader and with ewfverify: the files are listed in copy
// order with the content and hashes of want (path -> bytes), each once.
func (h *copyHarness) check(want map[string][]byte) {
	h.t.Helper()
	name := filepath.Join(h.out, "copy.L01")
	lr, err := ewf.OpenLogical(name)
	if err != nil {
		h.t.Fatal(err)
	}
	defer lr.Close()
	if err := lr.Verify(); err != nil {
		h.t.Fatal(err)
	}
	var order []string
	for _, f := range lr.Entries() {
		if f.Dir {
			continue
		}
		order = append(order, f.Path)
		w, ok := want[f.Path]
		if !ok {
			h.t.Fatalf("%s is in the L01, not expected", f.Path)
		}
		rc, err := lr.Open(f.Path)
		if err != nil {
			h.t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		if err != nil || !bytes.Equal(got, w) {
			h.t.Fatalf("%s: %d bytes back (%v), want %d", f.Path, len(got), err, len(w))
		}
		if sum := md5.Sum(w); f.Hashes.MD5 != hex.EncodeToString(sum[:]) {
			h.t.Fatalf("%s: stored MD5 %s is not its content's", f.Path, f.Hashes.MD5)
		}
	}
	var wantOrder []string
	for _, it := range h.items {
		if _, ok := want[it.path]; ok && !it.e.Dir {
			wantOrder = append(wantOrder, it.path)
		}
	}
	if strings.Join(order, "\n") != strings.Join(wantOrder, "\n") {
		h.t.Fatalf("the L01 lists %d files out of the copy order", len(order))
	}
	if out, err := exec.Command(testenv.Tool(h.t, "ewfverify"), "-q", name).CombinedOutput(); err != nil {
		h.t.Fatalf("ewfverify: %v\n%s", err, out)
	}
}

var testPrefetch = prefetchLimits{maxFile: 32 << 10, maxBytes: 96 << 10, maxFiles: 6, workers: 2}

// TestLogicalReadAheadOrderAndBound copies 400 files with read-ahead: the L01 lists them in the
// selection's order with their content and hashes (our reader, ewfverify), the results are in that
// order too, the progress counts every byte, and what was read but not yet stored never exceeded
// the read-ahead's byte budget.
func TestLogicalReadAheadOrderAndBound(t *testing.T) {
	h := newCopyHarness(t, 400)
	var maxAhead atomic.Int64
	var r *logicalRun
	var mu sync.Mutex
	sample := func(c output.Container) output.Container {
		return &watchSink{Container: c, rs: c.(output.Resumable), after: func() {
			mu.Lock()
			defer mu.Unlock()
			r.l.mu.Lock()
			ahead := h.disk.read.Load() - r.l.bytesDone
			r.l.mu.Unlock()
			if ahead > maxAhead.Load() {
				maxAhead.Store(ahead)
			}
		}}
	}
	rr, err := h.runWith(context.Background(), testPrefetch, sample, func(x *logicalRun) { mu.Lock(); r = x; mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	h.check(h.data)
	var total int64
	for i, it := range h.items {
		if rr.results[i].Path != it.path {
			t.Fatalf("result %d is %s, item %s", i, rr.results[i].Path, it.path)
		}
		total += it.e.Size
	}
	if rr.done != total || len(rr.problems) != 0 {
		t.Fatalf("progress %d of %d bytes, problems %v", rr.done, total, rr.problems)
	}
	// Sampled as each file is stored: the files the loop streams are counted whole by then, and
	// the read-ahead (this file included, until it is released) holds at most maxBytes.
	if maxAhead.Load() > testPrefetch.maxBytes {
		t.Fatalf("%d bytes read ahead of the container, bound %d", maxAhead.Load(), testPrefetch.maxBytes)
	}
	if n := h.fsys.maxOpen.Load(); n > int32(testPrefetch.workers)+1 {
		t.Fatalf("%d files open at once with %d readers", n, testPrefetch.workers)
	}
	t.Logf("at most %d bytes read ahead, %d files open at once", maxAhead.Load(), h.fsys.maxOpen.Load())
}

// TestLogicalReadAheadErrors: a file whose read fails mid-file, and one that cannot be opened, are
// problem lines; the failing one keeps the bytes read before the error, and every other file is
// copied whole, in order.
func TestLogicalReadAheadErrors(t *testing.T) {
	h := newCopyHarness(t, 120)
	bad := 55 // a small file: read ahead
	if s := h.items[bad].e.Size; s < 8<<10 || s > testPrefetch.maxFile {
		t.Fatalf("file %d has %d bytes, not a read-ahead file with a middle", bad, s)
	}
	h.disk.badOff = h.disk.file(bad) + 4096
	h.disk.badTo = h.disk.badOff + 512
	unopenable := 56
	h.items[unopenable].e.Path += "-unopenable"
	h.items[unopenable].path += "-unopenable"
	want := map[string][]byte{}
	for p, b := range h.data {
		want[p] = b
	}
	want[h.items[bad].path] = h.data[h.items[bad].path][:4096]
	delete(want, "fs-fake/v/f0056")
	want[h.items[unopenable].path] = nil
	r, err := h.run(context.Background(), testPrefetch, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.check(want)
	if len(r.problems) != 2 || !strings.Contains(r.problems[0], "fs-fake/v/f0055: ") || !strings.Contains(r.problems[0], "unreadable sector") ||
		!strings.Contains(r.problems[1], "f0056-unopenable: corrupt inode") {
		t.Fatalf("problems: %q", r.problems)
	}
	if r.results[bad].Err == "" || r.results[unopenable].Err == "" || len(r.results) != len(h.items) {
		t.Fatalf("results: %+v / %+v of %d", r.results[bad], r.results[unopenable], len(r.results))
	}
}

// TestLogicalReadAheadPauseResume pauses the copy while files after the current one are read
// ahead: the checkpoint names the first file not stored, the read-ahead is dropped, and the resumed
// copy finishes an L01 that holds every file once, in order, verified by ewfverify.
func TestLogicalReadAheadPauseResume(t *testing.T) {
	h := newCopyHarness(t, 300)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stored := 0
	pauseAfter := 100
	_, err := h.run(ctx, testPrefetch, func(c output.Container) output.Container {
		return &watchSink{Container: c, rs: c.(output.Resumable), after: func() {
			if stored++; stored == pauseAfter {
				// Let the readers get ahead of this file before pausing.
				for deadline := time.Now().Add(5 * time.Second); h.fsys.opened.Load() < int32(pauseAfter+3) && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				cancel()
			}
		}}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("paused copy: %v", err)
	}
	var cp logicalCheckpoint
	if err := json.Unmarshal(h.task.Checkpoint, &cp); err != nil {
		t.Fatal(err)
	}
	// Items: the folder, then the stored files (AddDir is not counted by watchSink).
	if cp.Items != pauseAfter+1 {
		t.Fatalf("checkpoint at item %d, the pause came after item %d", cp.Items, pauseAfter)
	}
	if opened := h.fsys.opened.Load(); opened <= int32(pauseAfter) {
		t.Fatalf("only %d files opened at the pause: nothing was read ahead", opened)
	}
	if _, err := h.run(context.Background(), testPrefetch, nil); err != nil {
		t.Fatal(err)
	}
	h.check(h.data)
}

// TestLogicalReadAheadDriveGone: the drive leaves while files are read ahead; the copy fails as
// a physical image does, and the files stored before are the ones read before it left.
func TestLogicalReadAheadDriveGone(t *testing.T) {
	h := newCopyHarness(t, 200)
	h.disk.goneAt.Store(h.disk.file(150))
	r, err := h.run(context.Background(), testPrefetch, nil)
	if err == nil || !errors.Is(err, hal.ErrGone) || !strings.Contains(err.Error(), "the source drive is gone from SATA1") {
		t.Fatalf("copy with the drive gone: %v", err)
	}
	if n := len(r.results); n > 150 || n < 140 {
		t.Fatalf("%d results: the copy stopped away from the file where the drive left", n)
	}
}

// watchSink calls after once each file is stored.
type watchSink struct {
	output.Container
	rs    output.Resumable
	after func()
}

func (w *watchSink) Checkpoint() (ewf.LogicalState, error) { return w.rs.Checkpoint() }

func (w *watchSink) AddFile(e logical.Entry, path string, r io.Reader) (map[string]string, error) {
	defer w.after()
	return w.Container.AddFile(e, path, r)
}

func (w *watchSink) AddPrepared(e logical.Entry, path string, p output.Prepared, readErr error) (map[string]string, error) {
	defer w.after()
	return w.Container.AddPrepared(e, path, p, readErr)
}
