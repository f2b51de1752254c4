package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evidenced/evidenced/daemon/report"
	"github.com/evidenced/evidenced/formats/ewf"
	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/imaging/blockcache"
	"github.com/evidenced/evidenced/imaging/filter"
	"github.com/evidenced/evidenced/imaging/logical"
	"github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/imaging/output"
	"github.com/evidenced/evidenced/imaging/target"
	"github.com/evidenced/evidenced/store"
)

// LogicalRequest is a validated start-logical request. Options.Filter selects the files (nil:
// every file and folder); Options.Hashes are the per-file hashes (MD5, SHA1; none: empty).
type LogicalRequest struct {
	Port       hal.Port
	Drive      hal.Drive
	Spec       target.Spec
	Options    options.Task
	CaseID     string
	EvidenceID string
}

// StartLogical validates the target, creates the logical imaging task and starts it.
func (m *Manager) StartLogical(ctx context.Context, req LogicalRequest) (string, error) {
	return m.start(ctx, startSpec{
		kind: KindLogical, verb: "logical imaging", port: req.Port, drive: req.Drive, spec: req.Spec, opts: req.Options,
		caseID: req.CaseID, evidenceID: req.EvidenceID,
		run: func(ctx context.Context, t *store.Task, l *live, tgt target.Target) error {
			return m.runLogical(ctx, t, l, req, tgt, false)
		},
	})
}

// logicalItem is one entry chosen for copying.
type logicalItem struct {
	fs   logical.FS
	e    logical.Entry
	path string // in the container: volume folder + path in the volume
}

// logicalResult is one line of the report's file list.
type logicalResult struct {
	Path     string
	Dir      bool
	Size     int64
	Modified time.Time
	Deleted  bool
	MD5      string
	SHA1     string
	Err      string
}

// volumeName is the folder a volume's files go under: p1-ext4, p3-ntfs, or fs-fat32 for a bare
// file system.
func volumeName(v logical.Volume) string {
	fsName := v.FS
	if fsName == "" {
		fsName = "unknown"
	}
	if v.Index == 0 {
		return "fs-" + fsName
	}
	return fmt.Sprintf("p%d-%s", v.Index, fsName)
}

// copyable reports whether an entry has content worth copying: regular files and symbolic links
// (their content is the link's target, as SleuthKit's icat gives it). Devices, FIFOs and sockets
// have none.
func copyable(e logical.Entry) bool {
	return !e.Dir && (e.Mode.IsRegular() || e.Mode&fs.ModeSymlink != 0)
}

// logicalCheckpoint is where a paused logical task stands: the first Items entries of the
// (deterministic) selection are in the container, whose state is L01.
type logicalCheckpoint struct {
	Items    int              `json:"items"`
	Bytes    int64            `json:"bytes"`
	Problems []string         `json:"problems,omitempty"`
	L01      ewf.LogicalState `json:"l01"`
}

// logicalRun is one run of a logical imaging task: what its stages (scan, reconcile the
// checkpoint, copy, finish) hand on to each other.
type logicalRun struct {
	m   *Manager
	t   *store.Task
	l   *live
	req LogicalRequest
	tgt target.Target
	rd  *goneWatch

	// From the scan.
	vols     []logical.Volume
	volState map[int]string // per volume index: read or why not, for the report
	items    []logicalItem
	total    int64 // bytes of the selected files

	// From the checkpoint (resume) and the copy.
	st       *ewf.LogicalState // the container's state to reopen at; nil: a new container
	start    int               // first item still to copy
	done     int64             // bytes copied
	results  []logicalResult
	problems []string

	sink     output.Container
	cpEvery  time.Duration
	lastCP   time.Time
	prefetch prefetchLimits
	srcMu    sync.Mutex // the file system readers' lock (lockedFS)
}

func (m *Manager) runLogical(ctx context.Context, t *store.Task, l *live, req LogicalRequest, tgt target.Target, resume bool) error {
	l.tgt = tgt
	hrd, err := req.Drive.Open()
	if err != nil {
		return fmt.Errorf("open source drive: %w", err)
	}
	defer hrd.Close()
	// The file system readers may fold a read error into their own; the reader itself notices a
	// drive that is gone, which fails the task as it fails a physical one.
	r := &logicalRun{m: m, t: t, l: l, req: req, tgt: tgt, rd: &goneWatch{Reader: hrd}, volState: map[int]string{}, prefetch: defaultPrefetch()}
	var cp *logicalCheckpoint
	if resume {
		cp = &logicalCheckpoint{}
		if err := json.Unmarshal(t.Checkpoint, cp); err != nil {
			return fmt.Errorf("checkpoint of the paused task is unreadable: %w", err)
		}
	}
	defer func() {
		// The report lists every volume, file and error, however the task ended.
		extra, err := report.Extra{Logical: logicalReport(r.vols, r.volState, r.results, r.problems)}.Marshal()
		if err != nil {
			m.log.Error("logical report", "task", t.Key, "err", err)
		}
		t.ReportExtra = extra
	}()
	if err := r.scan(ctx); err != nil {
		return err
	}
	t.Step = "copying"
	m.save(t)
	if cp != nil {
		if err := r.reconcile(cp); err != nil {
			return err
		}
	}
	// The copy's work (reading, digests, compression) runs below the API's priority, as an image
	// task's does: four logical copies at normal priority kept check-task answers waiting up to
	// 1.5 s behind their goroutines.
	bg := m.cfg.Background
	spec := output.Spec{Options: req.Options, Base: t.TargetBase, AcquiredAt: t.AcquiredAt, Identity: req.Drive.Identity(), Software: m.cfg.Software,
		Threads: ewf.Threads{Go: bg.Go, Workers: bg.CPUs()}}
	if r.sink, err = output.OpenContainer(spec, tgt, r.st); err != nil {
		return err
	}
	var copyErr error
	bg.Do(func() { copyErr = r.copyAll(ctx) })
	return r.finish(ctx, copyErr)
}

// scan lists the drive's volumes and walks their file systems, choosing the entries to copy.
// Unreadable volumes and entries are problems for the report; none readable fails the task.
func (r *logicalRun) scan(ctx context.Context) error {
	r.t.Step = "scanning"
	r.m.save(r.t)
	// The file system parsers read an inode, an MFT record or a directory block at a time: through
	// a cache of whole 32 KiB blocks, the walks of the 2 GiB corpus read the drive 1,792 times
	// instead of 102,249 (hal/linux's O_DIRECT reader on a loop device: 2.2-2.5 s -> 0.5 s,
	// TestScanCacheOnLoopDevice). It is dropped once the walks are done: the copy reads the drive
	// directly (file contents in walk order thrash it).
	size := r.req.Drive.Identity().Size
	src, err := blockcache.New(r.rd, size, blockcache.Config{})
	if err != nil {
		return fmt.Errorf("source cache: %w", err)
	}
	r.vols, err = logical.Volumes(src, size)
	if err != nil {
		return fmt.Errorf("no readable partition table or file system on the drive: %w", err)
	}
	// The volumes are walked at once (NTFS's walk alone took as long as the others together), then
	// taken in order, as one by one.
	walks := make([]volumeWalk, len(r.vols))
	var wg sync.WaitGroup
	bg := r.m.cfg.Background
	slots := make(chan struct{}, bg.CPUs())
	for i, v := range r.vols {
		slots <- struct{}{}
		wg.Add(1)
		bg.Go(func() {
			defer func() { <-slots; wg.Done() }()
			walks[i] = walkVolume(ctx, src, v)
		})
	}
	wg.Wait()
	st := src.Stats()
	src.Drop()
	r.m.log.Debug("scan reads", "task", r.t.Key, "blocks_read", st.Loads, "block_hits", st.Hits, "direct", st.Direct)
	// The list is sized once: grown by appending, its copies of 200-byte items were a third of
	// the scan's serial CPU after the walks (52,760 entries of the 2 GiB corpus).
	found := 0
	for _, w := range walks {
		found += len(w.found)
	}
	r.items = slices.Grow(r.items, found)
	readable := 0
	for i, v := range r.vols {
		ok, err := r.scanVolume(ctx, i, v, walks[i])
		walks[i] = volumeWalk{} // the entries not selected can go
		if err != nil {
			return err
		}
		if ok {
			readable++
		}
	}
	if err := r.rd.goneErr(r.t.Port); err != nil {
		return err
	}
	if readable == 0 {
		return fmt.Errorf("no file system on the drive could be read: %s", strings.Join(r.problems, "; "))
	}
	renameDeletedCollisions(r.items)
	r.l.mu.Lock()
	r.l.total = r.total
	r.l.mu.Unlock()
	r.t.BytesTotal = r.total
	return nil
}

// volumeWalk is what walking a volume found: its file system (nil: openErr says why not), its
// entries, the errors on some of them (path, error) and what stopped the walk.
type volumeWalk struct {
	fsys    logical.FS
	openErr error
	found   []logical.Entry
	errs    []entryErr
	walkErr error
}

type entryErr struct {
	path string
	err  error
}

// walkVolume opens v's file system and lists its entries; it touches nothing of the run but the
// source, so several volumes can be walked at once.
func walkVolume(ctx context.Context, src io.ReaderAt, v logical.Volume) (w volumeWalk) {
	if w.fsys, w.openErr = logical.OpenFS(src, v); w.openErr != nil {
		return w
	}
	w.walkErr = w.fsys.Walk(func(e logical.Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		w.found = append(w.found, e)
		return nil
	}, func(p string, err error) {
		w.errs = append(w.errs, entryErr{p, err})
	})
	return w
}

// scanVolume adds the selected entries of volume i, which w walked; ok is false when its file
// system cannot be opened. An error stops the task (stopped, or the drive is gone).
func (r *logicalRun) scanVolume(ctx context.Context, i int, v logical.Volume, w volumeWalk) (ok bool, err error) {
	m, t := r.m, r.t
	name := volumeName(v)
	if err := w.openErr; err != nil {
		m.logParserPanic(t, err)
		r.volState[i] = "not read: " + err.Error()
		m.logf(t, "volume %s (%s at byte %d): not read: %v", name, firstNonEmpty(v.FS, "unknown file system"), v.Offset, err)
		r.problems = append(r.problems, fmt.Sprintf("%s: %v", name, err))
		return false, nil
	}
	for _, e := range w.errs {
		m.logParserPanic(t, e.err)
		r.problems = append(r.problems, fmt.Sprintf("%s/%s: %v", name, e.path, e.err))
	}
	if werr := w.walkErr; werr != nil {
		if ctx.Err() != nil {
			return false, werr
		}
		if err := r.rd.goneErr(t.Port); err != nil {
			return false, err
		}
		m.logParserPanic(t, werr)
		r.problems = append(r.problems, fmt.Sprintf("%s: walk: %v", name, werr))
	}
	// The copy loop and the read-ahead share the file system: under a lock unless it can open and
	// read files from several goroutines at once.
	fsys := w.fsys
	if !logical.ConcurrentOpen(fsys) {
		fsys = lockedFS{FS: fsys, mu: &r.srcMu}
	}
	files := 0
	for _, e := range selectEntries(w.found, name, r.req.Options.Filter) {
		r.items = append(r.items, logicalItem{fs: fsys, e: e, path: name + "/" + e.Path})
		if !e.Dir {
			r.total += e.Size
			files++
		}
	}
	r.volState[i] = fmt.Sprintf("read: %d entries, %d selected files", len(w.found), files)
	m.logf(t, "volume %s: %d entries, %d files selected", name, len(w.found), files)
	return true, nil
}

// reconcile checks a paused task's checkpoint against the fresh scan: the entries it had copied
// must be the first ones of the selection now, or this is not the same evidence. Their results
// come from the checkpoint, and the copy goes on after them.
func (r *logicalRun) reconcile(cp *logicalCheckpoint) error {
	if cp.Items > len(r.items) {
		return fmt.Errorf("the drive now shows %d entries to copy, the paused task had done %d: not the same evidence", len(r.items), cp.Items)
	}
	r.st, r.start, r.done, r.problems = &cp.L01, cp.Items, cp.Bytes, cp.Problems
	stored := map[string]ewf.LogicalEntryState{}
	for _, e := range cp.L01.Entries {
		stored[e.Entry.Path] = e
	}
	for _, it := range r.items[:r.start] {
		e, ok := stored[it.path]
		if !ok {
			return fmt.Errorf("%s was copied before the pause but is not in the selection now: not the same evidence", it.path)
		}
		r.results = append(r.results, logicalResult{Path: it.path, Dir: it.e.Dir, Size: e.Entry.Size, Modified: it.e.Modified,
			Deleted: it.e.Deleted, MD5: e.Hashes.MD5, SHA1: e.Hashes.SHA1})
	}
	r.l.set(r.done)
	r.m.logf(r.t, "resuming after %d of %d entries", r.start, len(r.items))
	return nil
}

// copyAll copies the items from r.start into the sink, checkpointing between files. The error is
// what stopped it (context.Canceled: paused or stopped); a file that cannot be read is a problem
// for the report, not an error. Small files come read ahead (logical_prefetch.go), in order.
func (r *logicalRun) copyAll(ctx context.Context) error {
	r.cpEvery = r.m.cfg.CheckpointEvery
	r.checkpoint(r.start) // so that a pause during the first file can resume too
	pf := r.startPrefetch(ctx, r.start)
	defer pf.stop()
	for i := r.start; i < len(r.items); i++ {
		it := r.items[i]
		if err := ctx.Err(); err != nil {
			r.checkpoint(i) // between two files: the exact point to resume from
			return err
		}
		if time.Since(r.lastCP) >= r.cpEvery {
			r.checkpoint(i)
		}
		var res logicalResult
		var err error
		if r.prefetch.prefetchable(it) {
			res, err = r.copyReadAhead(ctx, i, pf)
		} else {
			res, err = r.copyItem(ctx, it)
		}
		if err != nil {
			if errors.Is(err, errNotStored) {
				r.checkpoint(i) // nothing of item i was stored: resume at it
				return ctx.Err()
			}
			return err
		}
		if res.Err != "" {
			r.problems = append(r.problems, fmt.Sprintf("%s: %s", it.path, res.Err))
			r.m.logf(r.t, "file %s: %s", it.path, res.Err)
		}
		r.results = append(r.results, res)
	}
	return nil
}

// copyItem adds one folder or file to the sink.
func (r *logicalRun) copyItem(ctx context.Context, it logicalItem) (logicalResult, error) {
	res := logicalResult{Path: it.path, Dir: it.e.Dir, Size: it.e.Size, Modified: it.e.Modified, Deleted: it.e.Deleted}
	if it.e.Dir {
		if err := r.sink.AddDir(it.e, it.path); err != nil {
			return res, fmt.Errorf("add folder %s: %w", it.path, err)
		}
		return res, nil
	}
	var h map[string]string
	rc, oerr := it.fs.Open(it.e)
	if oerr != nil {
		r.notOpened(&res, it, oerr)
	} else {
		cr := &countingReader{r: rc, ctx: ctx, add: func(n int) { r.done += int64(n); r.l.set(r.done) }}
		var aerr error
		h, aerr = r.sink.AddFile(it.e, it.path, cr)
		rc.Close()
		if cr.ctxErr != nil {
			return res, cr.ctxErr // paused mid-file: the last checkpoint is the resume point
		}
		if err := r.notAdded(&res, aerr); err != nil {
			return res, err
		}
	}
	if err := r.rd.goneErr(r.t.Port); err != nil {
		return res, err // what this file got is not its content
	}
	res.MD5, res.SHA1 = h["MD5"], h["SHA1"]
	return res, nil
}

// notOpened records a file that could not be opened: a problem for the report, and an error
// entry in the container.
func (r *logicalRun) notOpened(res *logicalResult, it logicalItem, err error) {
	r.m.logParserPanic(r.t, err)
	res.Err = err.Error()
	r.sink.AddError(it.e, it.path, err)
}

// notAdded sorts out an error adding a file: the container's own failure stops the task (the
// error returned); a read error is the file's problem, recorded in res.
func (r *logicalRun) notAdded(res *logicalResult, err error) error {
	if err == nil {
		return nil
	}
	if r.sink.Broken() != nil {
		return fmt.Errorf("writing %s: %w", r.t.Target, r.sink.Broken())
	}
	r.m.logParserPanic(r.t, err)
	res.Err = err.Error()
	return nil
}

// errNotStored: the copy stopped (paused or stopped) before the file came, and nothing of it was
// stored.
var errNotStored = errors.New("stopped before the file was stored")

// copyReadAhead stores item i from the read-ahead, as copyItem stores a file it reads.
func (r *logicalRun) copyReadAhead(ctx context.Context, i int, pf *prefetcher) (logicalResult, error) {
	it := r.items[i]
	res := logicalResult{Path: it.path, Size: it.e.Size, Modified: it.e.Modified, Deleted: it.e.Deleted}
	ra, err := pf.next(i)
	if err != nil {
		return res, err
	}
	if ra == nil || ra.skipped {
		if ctx.Err() == nil {
			return res, errors.New("the read-ahead stopped before the copy") // a bug
		}
		return res, errNotStored
	}
	var h map[string]string
	if ra.openErr != nil {
		r.notOpened(&res, it, ra.openErr)
	} else {
		var aerr error
		h, aerr = r.sink.AddPrepared(it.e, it.path, ra.p, ra.readErr)
		r.done += int64(ra.p.Len())
		r.l.set(r.done)
		if err := r.notAdded(&res, aerr); err != nil {
			return res, err
		}
	}
	pf.release(ra)
	if ra.gone {
		return res, r.rd.goneErr(r.t.Port) // what this file got is not its content
	}
	res.MD5, res.SHA1 = h["MD5"], h["SHA1"]
	return res, nil
}

// checkpoint stores where the copy stands (next: the first item not yet in the container), when
// the container can resume. A checkpoint holds the whole tree so far, so its cost grows with the
// files copied: the interval grows with it, keeping checkpoints under 5% of the task's time.
func (r *logicalRun) checkpoint(next int) {
	rs, resumable := r.sink.(output.Resumable)
	if !resumable {
		return
	}
	r.lastCP = time.Now()
	defer func() { r.cpEvery = max(r.cpEvery, 20*time.Since(r.lastCP)) }()
	ls, err := rs.Checkpoint()
	if err != nil {
		r.m.log.Warn("logical checkpoint", "task", r.t.Key, "err", err)
		return
	}
	data, err := json.Marshal(logicalCheckpoint{Items: next, Bytes: r.done, Problems: r.problems, L01: ls})
	if err != nil {
		return
	}
	r.t.Checkpoint, r.t.BytesDone = data, r.done
	r.m.save(r.t)
}

// finish closes the container whatever copyErr says (what was copied stays a valid, readable
// container; a resume truncates it back to its checkpoint), then records its hashes and verifies
// it when the task asks.
func (r *logicalRun) finish(ctx context.Context, copyErr error) error {
	m, t := r.m, r.t
	cerr := r.sink.Close()
	m.logf(t, "%d of %d entries written, %d bytes of %d", len(r.results), len(r.items), r.done, r.total)
	if errors.Is(copyErr, context.Canceled) {
		return copyErr // paused or stopped: the checkpoint stays
	}
	t.Checkpoint = nil
	if copyErr != nil {
		return fmt.Errorf("%w (the partial %s is kept and holds the %d entries copied before)", copyErr, strings.ToUpper(r.req.Options.Format.Extension()), len(r.results))
	}
	if cerr != nil {
		return fmt.Errorf("finish %s: %w", t.Target, cerr)
	}
	t.Hashes = r.sink.Hashes()
	if r.req.Options.Format == options.Zip {
		// The zip's hashes are of its own bytes (md5sum of the file gives them).
		t.ImageFiles = []store.ImageFile{{Name: t.TargetBase + ".zip", Hashes: t.Hashes}}
	}
	for name, sum := range t.Hashes {
		m.logf(t, "container %s %s", name, sum)
	}
	if n := len(r.problems); n > 0 {
		t.Details = fmt.Sprintf("%d errors (listed in the report)", n)
	}
	t.Step = "post-hash"
	if t.Options.Verify {
		m.save(t)
		if err := r.sink.Verify(ctx); err != nil {
			return fmt.Errorf("verification FAILED: %w", err)
		}
		m.logf(t, "verification: every file's hash and the container re-read match")
		t.Verified = true
		t.Details = joinDetails(t.Details, "verified")
	}
	return nil
}

// selectEntries keeps the copyable files the filter selects (all of them without a filter) and
// the folders on their way; without a filter every folder is kept, empty ones too.
func selectEntries(all []logical.Entry, volume string, f *filter.Filter) []logical.Entry {
	if f == nil {
		out := make([]logical.Entry, 0, len(all))
		for _, e := range all {
			if e.Dir || copyable(e) {
				out = append(out, e)
			}
		}
		return out
	}
	type key struct {
		path    string
		id      uint64
		deleted bool
	}
	keepDir := map[string]bool{}
	keepFile := map[key]bool{}
	for _, e := range all {
		if e.Dir || !copyable(e) {
			continue
		}
		if f.Match(filter.File{Path: volume + "/" + e.Path, Size: e.Size, Modified: e.Modified, Deleted: e.Deleted}) {
			keepFile[key{e.Path, e.ID, e.Deleted}] = true
			for d := path.Dir(e.Path); d != "." && d != "/" && !keepDir[d]; d = path.Dir(d) {
				keepDir[d] = true
			}
		}
	}
	out := make([]logical.Entry, 0, len(keepFile)+len(keepDir))
	for _, e := range all { // keep the walk's order: folders before their contents
		if (e.Dir && keepDir[e.Path]) || (!e.Dir && keepFile[key{e.Path, e.ID, e.Deleted}]) {
			out = append(out, e)
		}
	}
	return out
}

// renameDeletedCollisions gives a deleted entry whose path a live entry (or another deleted one)
// already has a distinct name, so both survive in the container: "name (deleted 1234)".
func renameDeletedCollisions(items []logicalItem) {
	used := make(map[string]bool, len(items))
	for _, it := range items {
		if !it.e.Deleted {
			used[it.path] = true
		}
	}
	for i := range items {
		it := &items[i]
		if !it.e.Deleted {
			continue
		}
		if used[it.path] {
			it.path = fmt.Sprintf("%s (deleted %d)", it.path, it.e.ID)
		}
		used[it.path] = true
	}
}

// goneWatch remembers that a read of the source failed because the drive is gone.
type goneWatch struct {
	hal.Reader
	gone atomic.Pointer[error]
}

func (g *goneWatch) ReadAt(p []byte, off int64) (int, error) {
	n, err := g.Reader.ReadAt(p, off)
	if err != nil && errors.Is(err, hal.ErrGone) {
		g.gone.CompareAndSwap(nil, &err)
	}
	return n, err
}

// goneErr is the task's failure once the drive is gone, nil before.
func (g *goneWatch) goneErr(port string) error {
	if e := g.gone.Load(); e != nil {
		return fmt.Errorf("the source drive is gone from %s (unplugged or powered off): %w", port, *e)
	}
	return nil
}

// countingReader reports progress and stops a copy promptly when the task is stopped.
type countingReader struct {
	r      io.Reader
	ctx    context.Context
	add    func(int)
	ctxErr error
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		c.ctxErr = err
		return 0, err
	}
	n, err := c.r.Read(p)
	c.add(n)
	return n, err
}

// resumeLogical rebuilds a paused logical task's request from its stored options.
func (m *Manager) resumeLogical(t *store.Task, d hal.Drive, tgt target.Target) (func(ctx context.Context, t *store.Task, l *live) error, error) {
	req := LogicalRequest{Drive: d, Options: t.Options}
	return func(ctx context.Context, t *store.Task, l *live) error {
		return m.runLogical(ctx, t, l, req, tgt, true)
	}, nil
}

// pausable reports whether a task pauses (resumable) rather than stops: imaging, and logical
// imaging into an L01.
func pausable(t *store.Task) bool {
	return t.Kind == KindImage || (t.Kind == KindLogical && t.Options.Format == options.L01)
}

// logParserPanic puts the stack of a go-ntfs panic in the daemon's log; the task's report and log
// carry only the error's one line.
func (m *Manager) logParserPanic(t *store.Task, err error) {
	if pe, ok := errors.AsType[*logical.PanicError](err); ok {
		m.log.Error("NTFS parser panic", "task", t.Key, "what", pe.What, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
	}
}
