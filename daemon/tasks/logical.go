package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/evidenced/evidenced/daemon/report"
	"github.com/evidenced/evidenced/formats/ewf"
	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/imaging/filter"
	"github.com/evidenced/evidenced/imaging/logical"
	"github.com/evidenced/evidenced/imaging/options"
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

func (m *Manager) runLogical(ctx context.Context, t *store.Task, l *live, req LogicalRequest, tgt target.Target, resume bool) (err error) {
	l.tgt = tgt
	d := req.Drive
	id := d.Identity()
	hrd, err := d.Open()
	if err != nil {
		return fmt.Errorf("open source drive: %w", err)
	}
	defer hrd.Close()
	// The file system readers may fold a read error into their own; the reader itself notices a
	// drive that is gone, which fails the task as it fails a physical one.
	rd := &goneWatch{Reader: hrd}

	var (
		results  []logicalResult
		problems []string
		vols     []logical.Volume
		volState = map[int]string{}
		cp       *logicalCheckpoint
	)
	if resume {
		cp = &logicalCheckpoint{}
		if err := json.Unmarshal(t.Checkpoint, cp); err != nil {
			return fmt.Errorf("checkpoint of the paused task is unreadable: %w", err)
		}
	}
	defer func() {
		// The report lists every volume, file and error, however the task ended.
		extra, err := report.Extra{Logical: logicalReport(vols, volState, results, problems)}.Marshal()
		if err != nil {
			m.log.Error("logical report", "task", t.Key, "err", err)
		}
		t.ReportExtra = extra
	}()

	t.Step = "scanning"
	m.save(t)
	vols, err = logical.Volumes(rd, id.Size)
	if err != nil {
		return fmt.Errorf("no readable partition table or file system on the drive: %w", err)
	}
	var items []logicalItem
	var total int64
	readable := 0
	for i, v := range vols {
		name := volumeName(v)
		fsys, err := logical.OpenFS(rd, v)
		if err != nil {
			m.logParserPanic(t, err)
			volState[i] = "not read: " + err.Error()
			m.logf(t, "volume %s (%s at byte %d): not read: %v", name, firstNonEmpty(v.FS, "unknown file system"), v.Offset, err)
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		var found []logical.Entry
		werr := fsys.Walk(func(e logical.Entry) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			found = append(found, e)
			return nil
		}, func(p string, err error) {
			m.logParserPanic(t, err)
			problems = append(problems, fmt.Sprintf("%s/%s: %v", name, p, err))
		})
		if werr != nil {
			if ctx.Err() != nil {
				return werr
			}
			if err := rd.goneErr(t.Port); err != nil {
				return err
			}
			m.logParserPanic(t, werr)
			problems = append(problems, fmt.Sprintf("%s: walk: %v", name, werr))
		}
		sel := selectEntries(found, name, req.Options.Filter)
		files := 0
		for _, e := range sel {
			items = append(items, logicalItem{fs: fsys, e: e, path: name + "/" + e.Path})
			if !e.Dir {
				total += e.Size
				files++
			}
		}
		volState[i] = fmt.Sprintf("read: %d entries, %d selected files", len(found), files)
		readable++
		m.logf(t, "volume %s: %d entries, %d files selected", name, len(found), files)
	}
	if err := rd.goneErr(t.Port); err != nil {
		return err
	}
	if readable == 0 {
		return fmt.Errorf("no file system on the drive could be read: %s", strings.Join(problems, "; "))
	}
	renameDeletedCollisions(items)
	l.mu.Lock()
	l.total = total
	l.mu.Unlock()
	t.BytesTotal = total

	t.Step = "copying"
	m.save(t)
	var st *ewf.LogicalState
	start := 0
	var done int64
	if cp != nil {
		if cp.Items > len(items) {
			return fmt.Errorf("the drive now shows %d entries to copy, the paused task had done %d: not the same evidence", len(items), cp.Items)
		}
		st, start, done, problems = &cp.L01, cp.Items, cp.Bytes, cp.Problems
		stored := map[string]ewf.LogicalEntryState{}
		for _, e := range cp.L01.Entries {
			stored[e.Entry.Path] = e
		}
		for _, it := range items[:start] {
			e, ok := stored[it.path]
			if !ok {
				return fmt.Errorf("%s was copied before the pause but is not in the selection now: not the same evidence", it.path)
			}
			results = append(results, logicalResult{Path: it.path, Dir: it.e.Dir, Size: e.Entry.Size, Modified: it.e.Modified,
				Deleted: it.e.Deleted, MD5: e.Hashes.MD5, SHA1: e.Hashes.SHA1})
		}
		l.set(done)
		m.logf(t, "resuming after %d of %d entries", start, len(items))
	}
	sink, err := openLogicalSink(req, t, tgt, m.cfg.Software, st)
	if err != nil {
		return err
	}
	rs, resumable := sink.(resumableSink)
	// A checkpoint holds the whole tree so far, so its cost grows with the files copied: the
	// interval grows with it, keeping checkpoints under 5% of the task's time.
	cpEvery := m.cfg.CheckpointEvery
	var lastCP time.Time
	checkpoint := func(next int) {
		if !resumable {
			return
		}
		lastCP = time.Now()
		defer func() { cpEvery = max(cpEvery, 20*time.Since(lastCP)) }()
		ls, err := rs.Checkpoint()
		if err != nil {
			m.log.Warn("logical checkpoint", "task", t.Key, "err", err)
			return
		}
		data, err := json.Marshal(logicalCheckpoint{Items: next, Bytes: done, Problems: problems, L01: ls})
		if err != nil {
			return
		}
		t.Checkpoint, t.BytesDone = data, done
		m.save(t)
	}
	var copyErr error
	checkpoint(start) // so that a pause during the first file can resume too
	for i := start; i < len(items); i++ {
		it := items[i]
		if err := ctx.Err(); err != nil {
			copyErr = err
			checkpoint(i) // between two files: the exact point to resume from
			break
		}
		if time.Since(lastCP) >= cpEvery {
			checkpoint(i)
		}
		res := logicalResult{Path: it.path, Dir: it.e.Dir, Size: it.e.Size, Modified: it.e.Modified, Deleted: it.e.Deleted}
		if it.e.Dir {
			if err := sink.AddDir(it.e, it.path); err != nil {
				copyErr = fmt.Errorf("add folder %s: %w", it.path, err)
				break
			}
			results = append(results, res)
			continue
		}
		var h map[string]string
		rc, oerr := it.fs.Open(it.e)
		if oerr != nil {
			m.logParserPanic(t, oerr)
			res.Err = oerr.Error()
			sink.AddError(it.e, it.path, oerr)
		} else {
			cr := &countingReader{r: rc, ctx: ctx, add: func(n int) { done += int64(n); l.set(done) }}
			var aerr error
			h, aerr = sink.AddFile(it.e, it.path, cr)
			rc.Close()
			if cr.ctxErr != nil {
				copyErr = cr.ctxErr // paused mid-file: the last checkpoint is the resume point
				break
			}
			if aerr != nil {
				if sink.Broken() != nil {
					copyErr = fmt.Errorf("writing %s: %w", t.Target, sink.Broken())
					break
				}
				m.logParserPanic(t, aerr)
				res.Err = aerr.Error()
			}
		}
		if err := rd.goneErr(t.Port); err != nil {
			copyErr = err // what this file got is not its content
			break
		}
		res.MD5, res.SHA1 = h["MD5"], h["SHA1"]
		if res.Err != "" {
			problems = append(problems, fmt.Sprintf("%s: %s", it.path, res.Err))
			m.logf(t, "file %s: %s", it.path, res.Err)
		}
		results = append(results, res)
	}
	// Close even after a failure or a pause: what was copied stays a valid, readable container
	// (a resume truncates it back to its checkpoint).
	cerr := sink.Close()
	m.logf(t, "%d of %d entries written, %d bytes of %d", len(results), len(items), done, total)
	if errors.Is(copyErr, context.Canceled) {
		return copyErr // paused or stopped: the checkpoint stays
	}
	t.Checkpoint = nil
	if copyErr != nil {
		return fmt.Errorf("%w (the partial %s is kept and holds the %d entries copied before)", copyErr, strings.ToUpper(req.Options.Format.Extension()), len(results))
	}
	if cerr != nil {
		return fmt.Errorf("finish %s: %w", t.Target, cerr)
	}
	t.Hashes = sink.Hashes()
	if req.Options.Format == options.Zip {
		// The zip's hashes are of its own bytes (md5sum of the file gives them).
		t.ImageFiles = []store.ImageFile{{Name: t.TargetBase + ".zip", Hashes: t.Hashes}}
	}
	for name, sum := range t.Hashes {
		m.logf(t, "container %s %s", name, sum)
	}
	if n := len(problems); n > 0 {
		t.Details = fmt.Sprintf("%d errors (listed in the report)", n)
	}
	t.Step = "post-hash"
	if t.Options.Verify {
		m.save(t)
		if err := sink.Verify(ctx); err != nil {
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
		out := all[:0:0]
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
