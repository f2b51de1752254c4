// Package pipeline runs one acquisition: the ordered block stream of imaging/source feeds every
// requested hash on its own goroutine, chunks are encoded (compressed) by a worker pool sized to the
// CPUs, and the format writer appends them in stream order. Memory is bounded by the queues, so a
// slow target slows the reader down instead of filling memory.
package pipeline

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evidenced/evidenced/formats/digest"
	"github.com/evidenced/evidenced/imaging/source"
)

// ChunkWriter is what the pipeline needs from an image format.
type ChunkWriter interface {
	ChunkSize() int
	// EncodeChunk is called from many goroutines at once; dst is a scratch buffer of the
	// pipeline's, the result may alias dst or src.
	EncodeChunk(dst, src []byte) (enc []byte, compressed bool, err error)
	// WriteChunk is called in stream order from one goroutine.
	WriteChunk(enc []byte, compressed bool, rawLen int) error
}

// Checkpointer is implemented by formats that can resume: Checkpoint is called from the writing
// goroutine right after a block's last chunk, and returns the format's state at that point.
type Checkpointer interface {
	Checkpoint() (json.RawMessage, error)
}

// Checkpoint is a consistent point of an acquisition: the first Offset bytes are hashed and written.
type Checkpoint struct {
	Offset     int64             `json:"offset"`
	HashStates map[string][]byte `json:"hashStates"`
	Format     json.RawMessage   `json:"format,omitempty"`
	BadRanges  []source.Range    `json:"badRanges,omitempty"`
}

// Config of one run.
type Config struct {
	Hashes  []digest.Name
	Workers int // encoders of the run's own; default GOMAXPROCS (not used with a Background)
	// Background, when set, runs the hashes and encoders at a lower kernel priority than the rest
	// of the process, on its shared encoders (nil: on the run's own ordinary goroutines, which
	// yield after each piece of work).
	Background *Background
	// Resume continues from a checkpoint (nil: from the start).
	Resume *Checkpoint
	// Progress is called with the bytes written so far, at most every ProgressEvery.
	Progress      func(done int64)
	ProgressEvery time.Duration
	// OnCheckpoint receives a consistent checkpoint about every CheckpointEvery (0: never).
	OnCheckpoint    func(Checkpoint)
	CheckpointEvery time.Duration
	// Pad is set when the format stores the stream zero-padded to a multiple of Pad bytes (E01
	// holds whole sectors): Result.PaddedHashes are then the hashes of the stream as stored.
	Pad int
}

// Result of a completed (or interrupted) run.
type Result struct {
	Bytes     int64
	Hashes    map[string]string // upper-case names, lower-case hex; set when the stream is complete
	BadRanges []source.Range
	// Last is the last consistent checkpoint, for pausing.
	Last *Checkpoint
	// PaddedHashes are the hashes of the stream zero-padded to Config.Pad, when Bytes is not a
	// multiple of it (nil otherwise): what a reader of the image computes.
	PaddedHashes map[string]string
}

// The stages of a run, each on its own goroutines with its own inbound channel, shut down in stream
// order: the feeder closes what it feeds, each stage closes what it owns when its input ends.
//
//	source.Stream → feeder ─┬→ hashStage (one per hash) ──parts──┐
//	                        └→ encoders → writerStage ───marks───┴→ assembler → OnCheckpoint

// block carries one source block through the hashers and encoders; it is released when every
// hasher and the writer are done with it.
type block struct {
	source.Block
	seq     int64
	refs    atomic.Int32
	release func(source.Block)
	// checkpoint marks a block after which a checkpoint is taken.
	checkpoint bool
}

func (b *block) done() {
	if b.refs.Add(-1) == 0 {
		b.release(b.Block)
	}
}

// chunkJob is one chunk on its way through an encoder to the writer; ready, shared by the chunks of
// a batch, closes once the batch is encoded (the writer is woken once a batch, not once a chunk).
type chunkJob struct {
	blk    *block
	data   []byte
	last   bool // last chunk of its block
	enc    []byte
	comp   bool
	err    error
	dst    *[]byte
	ready  chan struct{}
	rawLen int
}

// hashPart is a hash stage's state after a checkpoint block.
type hashPart struct {
	name  string
	seq   int64
	state []byte
}

// writeMark is the writer's position after a checkpoint block (ok: everything up to it is written).
type writeMark struct {
	seq    int64
	offset int64
	format json.RawMessage
	bad    []source.Range
	ok     bool
}

// failer cancels a run once, keeping the first error. runCtx ends on failure; streamCtx also ends
// when the caller's ctx does (pause/stop), which stops the reader while the stages drain.
type failer struct {
	once      sync.Once
	err       error
	runCtx    context.Context
	streamCtx context.Context
	cancelRun context.CancelFunc
	cancelSrc context.CancelFunc
}

func newFailer(ctx context.Context) *failer {
	f := &failer{}
	f.runCtx, f.cancelRun = context.WithCancel(context.Background())
	f.streamCtx, f.cancelSrc = context.WithCancel(ctx)
	return f
}

func (f *failer) fail(err error) {
	f.once.Do(func() { f.err = err; f.cancelRun(); f.cancelSrc() })
}

func (f *failer) close() { f.cancelRun(); f.cancelSrc() }

// hashStage feeds one hash with every block in order and saves its state after checkpoint blocks.
type hashStage struct {
	name string
	h    hash.Hash
	in   chan *block
}

func (s *hashStage) run(parts chan<- hashPart, f *failer, bg *Background) {
	// A stage on a background thread does not yield: the kernel preempts it, and a locked
	// goroutine that yields hands its P over and back through two thread wake-ups.
	background := bg != nil && bg.enter()
	for b := range s.in {
		if background {
			digest.Write(s.h, b.Data)
		} else {
			// In pieces: a hash's assembly runs to the end of its input without being
			// preempted, and a megabyte of MD5 is two milliseconds.
			for p := b.Data; len(p) > 0; {
				n := min(len(p), hashPiece)
				s.h.Write(p[:n])
				p = p[n:]
				yield()
			}
		}
		if b.checkpoint {
			st, err := digest.SaveState(s.h)
			if err != nil {
				f.fail(fmt.Errorf("%s: %w", s.name, err))
			}
			parts <- hashPart{s.name, b.seq, st}
		}
		b.done()
	}
}

// yield lets the daemon's other goroutines run after each unit of CPU-bound work (a chunk
// encoded, a block hashed). Go's scheduler serves its global run queue, where goroutines woken by
// the network poller wait while every P is busy, only once in 61 rounds of a P's local queue; the
// pipelines' goroutines hand work to each other through channels and keep the local queues full,
// so with four tasks imaging a check-task request waited hundreds of milliseconds. Yielding puts
// the worker on the global queue behind them. Measured with four drives and 50 pollers on two
// cores: check-task p99 560 ms -> 143 ms, imaging throughput unchanged within the noise; a yield
// costs about a microsecond against 100 µs or more of work.
func yield() { runtime.Gosched() }

// hashPiece is how much a hash stage hashes between yields.
const hashPiece = 128 << 10

// encBatch is how many chunks of a block an encoder takes at once: a background encoder sleeps and
// is woken once a batch, not once a chunk.
const encBatch = 16

// encoders compress a run's chunks concurrently, on goroutines of the run's own or on the
// Background's; the order is kept by the writer's queue, not here.
type encoders struct {
	w      ChunkWriter
	pool   sync.Pool // scratch buffers, returned by the writer
	in     chan []*chunkJob
	shared chan<- encodeBatch // the Background's encoders (in is then nil)
	wg     sync.WaitGroup
}

// encodeBatch is a batch of one run's chunks on its way to the Background's encoders.
type encodeBatch struct {
	e    *encoders
	jobs []*chunkJob
}

// startEncoders starts workers encoders of the run's own, or, with a Background, hands the run's
// chunks to the Background's encoders.
func startEncoders(w ChunkWriter, workers int, bg *Background) *encoders {
	cs := w.ChunkSize()
	e := &encoders{w: w}
	e.pool.New = func() any { b := make([]byte, cs+cs/8+1024); return &b }
	if bg != nil {
		e.shared = bg.encoders()
		return e
	}
	e.in = make(chan []*chunkJob, workers*4)
	for range workers {
		e.wg.Go(func() {
			for batch := range e.in {
				e.encode(batch, true)
			}
		})
	}
	return e
}

// encode encodes a batch; yielding after each chunk (see yield) is for ordinary goroutines.
func (e *encoders) encode(batch []*chunkJob, yielding bool) {
	for _, j := range batch {
		j.dst = e.pool.Get().(*[]byte)
		j.enc, j.comp, j.err = e.w.EncodeChunk(*j.dst, j.data)
		if yielding {
			yield()
		}
	}
	close(batch[0].ready)
}

func (e *encoders) submit(batch []*chunkJob) {
	if e.shared != nil {
		e.shared <- encodeBatch{e, batch}
		return
	}
	e.in <- batch
}

// close waits for the run's own encoders. (The Background's are done with a run's chunks once the
// writer has every chunk: it waits for each.)
func (e *encoders) close() {
	if e.in != nil {
		close(e.in)
	}
	e.wg.Wait()
}

// writerStage appends encoded chunks in stream order and reports its position after checkpoint blocks.
type writerStage struct {
	w        ChunkWriter
	src      *source.Reader
	in       chan *chunkJob
	marks    chan writeMark
	written  atomic.Int64
	progress func(int64)
	every    time.Duration
	done     chan struct{}
}

func (s *writerStage) run(enc *encoders, f *failer) {
	defer close(s.done)
	defer close(s.marks)
	lastProgress := time.Now()
	for j := range s.in {
		<-j.ready
		err := j.err
		if err == nil && f.runCtx.Err() == nil {
			err = s.w.WriteChunk(j.enc, j.comp, j.rawLen)
		}
		enc.pool.Put(j.dst)
		if err != nil {
			f.fail(fmt.Errorf("write chunk at byte %d: %w", j.blk.Off, err))
		} else {
			s.written.Add(int64(j.rawLen))
		}
		if j.last {
			if j.blk.checkpoint && err == nil {
				s.marks <- s.mark(j.blk, f)
			}
			j.blk.done()
		}
		if s.progress != nil && time.Since(lastProgress) >= s.every {
			lastProgress = time.Now()
			s.progress(s.written.Load())
		}
	}
}

func (s *writerStage) mark(b *block, f *failer) writeMark {
	m := writeMark{seq: b.seq, offset: b.Off + int64(len(b.Data)), bad: s.src.BadRanges(), ok: true}
	if c, ok := s.w.(Checkpointer); ok {
		fs, err := c.Checkpoint()
		if err != nil {
			f.fail(fmt.Errorf("format checkpoint: %w", err))
			m.ok = false
		}
		m.format = fs
	}
	return m
}

// assembler joins the hash states and the writer's position of one block into a checkpoint.
type assembler struct {
	hashes  int
	on      func(Checkpoint)
	pending map[int64]*pendingCP
	last    *Checkpoint
	done    chan struct{}
}

type pendingCP struct {
	cp    Checkpoint
	parts int
	wrote bool
}

func (a *assembler) get(seq int64) *pendingCP {
	p := a.pending[seq]
	if p == nil {
		p = &pendingCP{cp: Checkpoint{HashStates: map[string][]byte{}}}
		a.pending[seq] = p
	}
	return p
}

func (a *assembler) run(parts <-chan hashPart, marks <-chan writeMark) {
	defer close(a.done)
	for parts != nil || marks != nil {
		var seq int64
		select {
		case hp, ok := <-parts:
			if !ok {
				parts = nil
				continue
			}
			p := a.get(hp.seq)
			p.cp.HashStates[hp.name] = hp.state
			p.parts++
			seq = hp.seq
		case m, ok := <-marks:
			if !ok {
				marks = nil
				continue
			}
			if !m.ok {
				continue
			}
			p := a.get(m.seq)
			p.cp.Offset, p.cp.Format, p.cp.BadRanges, p.wrote = m.offset, m.format, m.bad, true
			seq = m.seq
		}
		if p := a.pending[seq]; p.parts == a.hashes && p.wrote {
			delete(a.pending, seq)
			c := p.cp
			a.last = &c
			if a.on != nil {
				a.on(c)
			}
		}
	}
}

// feed cuts the source's blocks into chunks and hands every block to each hash stage and its chunks,
// in order, to the writer's queue and the encoders. It stops early when the run fails.
func feed(blocks <-chan source.Block, src *source.Reader, cs int, cpEvery time.Duration,
	hs []*hashStage, enc *encoders, wr *writerStage, f *failer) {
	lastCP := time.Now()
	var seq int64
	for b := range blocks {
		blk := &block{Block: b, seq: seq, release: src.Release}
		seq++
		if cpEvery > 0 && time.Since(lastCP) >= cpEvery {
			blk.checkpoint = true
			lastCP = time.Now()
		}
		nChunks := (len(b.Data) + cs - 1) / cs
		blk.refs.Store(int32(len(hs) + 1))
		for _, h := range hs {
			h.in <- blk
		}
		// A chunk is queued for the writer before its batch goes to the encoders; the writer's
		// queue holds at least encBatch chunks, so the batch is always handed over before the
		// writer can wait for one of its chunks with the queue full.
		batch := make([]*chunkJob, 0, encBatch)
		var ready chan struct{}
		for i := range nChunks {
			lo, hi := i*cs, min((i+1)*cs, len(b.Data))
			if len(batch) == 0 {
				ready = make(chan struct{})
			}
			j := &chunkJob{blk: blk, data: b.Data[lo:hi], last: i == nChunks-1, ready: ready, rawLen: hi - lo}
			select {
			case wr.in <- j:
			case <-f.runCtx.Done():
				// Failed: the writer waits for the chunks it has queued, so hand the encoders
				// those still batched here; release what this block still holds; stop.
				if len(batch) > 0 {
					enc.submit(batch)
				}
				blk.done()
				return
			}
			if batch = append(batch, j); len(batch) == encBatch || j.last {
				enc.submit(batch)
				batch = make([]*chunkJob, 0, encBatch)
			}
		}
	}
}

// newHashes returns the named hashes, restored from a checkpoint when resuming.
func newHashes(names []digest.Name, resume *Checkpoint) (map[string]hash.Hash, error) {
	hashers := map[string]hash.Hash{}
	for _, name := range names {
		var h hash.Hash
		var err error
		if resume == nil {
			h, err = digest.New(name)
		} else if st, ok := resume.HashStates[string(name)]; !ok {
			err = fmt.Errorf("checkpoint has no %s state", name)
		} else {
			h, err = digest.RestoreState(name, st)
		}
		if err != nil {
			return nil, err
		}
		hashers[string(name)] = h
	}
	return hashers, nil
}

// Run acquires everything src streams into w. On ctx's end it stops at a consistent point and
// returns ctx's error with Result.Last set to the last checkpoint.
func Run(ctx context.Context, src *source.Reader, w ChunkWriter, cfg Config) (Result, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = cfg.Background.CPUs()
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 500 * time.Millisecond
	}
	cs := w.ChunkSize()
	if src.BlockSize()%cs != 0 {
		return Result{}, fmt.Errorf("block size %d is not a multiple of the chunk size %d", src.BlockSize(), cs)
	}
	hashers, err := newHashes(cfg.Hashes, cfg.Resume)
	if err != nil {
		return Result{}, err
	}
	var from int64
	if cp := cfg.Resume; cp != nil {
		from = cp.Offset
		src.SetBadRanges(cp.BadRanges)
	}
	if from%int64(src.BlockSize()) != 0 {
		return Result{}, fmt.Errorf("resume offset %d is not on a block boundary", from)
	}

	f := newFailer(ctx)
	defer f.close()
	blocks, readErr := src.Stream(f.streamCtx, from)

	asm := &assembler{hashes: len(hashers), on: cfg.OnCheckpoint, pending: map[int64]*pendingCP{}, done: make(chan struct{})}
	if cfg.Resume != nil {
		c := *cfg.Resume
		asm.last = &c
	}
	if bg := cfg.Background; bg != nil {
		// Every stage started below has ended when Run returns.
		bg.add(len(hashers))
		defer bg.add(-len(hashers))
	}
	parts := make(chan hashPart, 64)
	var hashWG sync.WaitGroup
	hs := make([]*hashStage, 0, len(hashers))
	for name, h := range hashers {
		s := &hashStage{name: name, h: h, in: make(chan *block, 8)}
		hs = append(hs, s)
		hashWG.Go(func() { s.run(parts, f, cfg.Background) })
	}
	enc := startEncoders(w, cfg.Workers, cfg.Background)
	wr := &writerStage{w: w, src: src, in: make(chan *chunkJob, cfg.Workers*encBatch*2), marks: make(chan writeMark, 8),
		progress: cfg.Progress, every: cfg.ProgressEvery, done: make(chan struct{})}
	wr.written.Store(from)
	go wr.run(enc, f)
	go asm.run(parts, wr.marks)

	feed(blocks, src, cs, cfg.CheckpointEvery, hs, enc, wr, f)

	// Shut down in stream order. If ctx ended, the reader has stopped; drain its channel (it closes
	// promptly) so its buffers come back.
	for b := range blocks {
		src.Release(b)
	}
	close(wr.in)
	enc.close()
	<-wr.done
	for _, s := range hs {
		close(s.in)
	}
	hashWG.Wait()
	close(parts)
	<-asm.done

	res := Result{Bytes: wr.written.Load(), BadRanges: src.BadRanges(), Last: asm.last}
	if f.err != nil {
		return res, f.err
	}
	if err := readErr(); err != nil && !errors.Is(err, context.Canceled) {
		return res, err
	}
	if ctx.Err() != nil {
		// Paused or stopped: every block fed is hashed and written, so this is a consistent point.
		cp, err := finalCheckpoint(res, hashers, w)
		if err != nil {
			return res, err
		}
		res.Last = cp
		return res, ctx.Err()
	}
	res.Hashes = map[string]string{}
	for name, h := range hashers {
		res.Hashes[name] = hex.EncodeToString(h.Sum(nil))
	}
	if pad := int64(cfg.Pad); pad > 0 && res.Bytes%pad != 0 {
		// Sum does not change the state: the hashers go on over the padding.
		zeros := make([]byte, pad-res.Bytes%pad)
		res.PaddedHashes = map[string]string{}
		for name, h := range hashers {
			h.Write(zeros)
			res.PaddedHashes[name] = hex.EncodeToString(h.Sum(nil))
		}
	}
	if cfg.Progress != nil {
		cfg.Progress(res.Bytes)
	}
	return res, nil
}

// finalCheckpoint is the checkpoint at the end of a drained run: everything fed is hashed and written.
func finalCheckpoint(res Result, hashers map[string]hash.Hash, w ChunkWriter) (*Checkpoint, error) {
	cp := Checkpoint{Offset: res.Bytes, HashStates: map[string][]byte{}, BadRanges: res.BadRanges}
	for name, h := range hashers {
		st, err := digest.SaveState(h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		cp.HashStates[name] = st
	}
	if c, ok := w.(Checkpointer); ok {
		fs, err := c.Checkpoint()
		if err != nil {
			return nil, fmt.Errorf("format checkpoint: %w", err)
		}
		cp.Format = fs
	}
	return &cp, nil
}

// HashStream hashes everything r yields with each named hash (verification of a written image).
// progress, if set, gets the bytes read so far.
func HashStream(ctx context.Context, r io.Reader, names []digest.Name, progress func(int64)) (map[string]string, error) {
	hs := map[string]hash.Hash{}
	ws := make([]io.Writer, 0, len(names))
	for _, n := range names {
		h, err := digest.New(n)
		if err != nil {
			return nil, err
		}
		hs[string(n)] = h
		ws = append(ws, h)
	}
	mw := io.MultiWriter(ws...)
	buf := make([]byte, 1<<20)
	var done int64
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, err := r.Read(buf)
		mw.Write(buf[:n])
		done += int64(n)
		if progress != nil {
			progress(done)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read at byte %d: %w", done, err)
		}
	}
	out := map[string]string{}
	for n, h := range hs {
		out[n] = hex.EncodeToString(h.Sum(nil))
	}
	return out, nil
}
