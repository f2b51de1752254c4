// Package pipeline runs one acquisition: the ordered block stream of imaging/source feeds every
// requested hash on its own goroutine, chunks are encoded (compressed) by a worker pool sized to the
// CPUs, and the format writer appends them in stream order. Memory is bounded by the queues, so a
// slow target slows the reader down instead of filling memory.
package pipeline

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	Hashes  []string // MD5, SHA1, SHA256, SHA512 (case-insensitive)
	Workers int      // encoders; default GOMAXPROCS
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

// NewHash returns the hash for a name (MD5, SHA1, SHA256, SHA512).
func NewHash(name string) (hash.Hash, error) {
	switch strings.ToUpper(name) {
	case "MD5":
		return md5.New(), nil
	case "SHA1":
		return sha1.New(), nil
	case "SHA256":
		return sha256.New(), nil
	case "SHA512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unknown hash %q (accepted: md5, sha1, sha256, sha512)", name)
}

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

type hashPart struct {
	name  string
	seq   int64
	state []byte
}

// Run acquires everything src streams into w. On ctx's end it stops at a consistent point and
// returns ctx's error with Result.Last set to the last checkpoint.
func Run(ctx context.Context, src *source.Reader, w ChunkWriter, cfg Config) (Result, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 500 * time.Millisecond
	}
	cs := w.ChunkSize()
	if src.BlockSize()%cs != 0 {
		return Result{}, fmt.Errorf("block size %d is not a multiple of the chunk size %d", src.BlockSize(), cs)
	}
	var from int64
	hashers := map[string]hash.Hash{}
	for _, name := range cfg.Hashes {
		h, err := NewHash(name)
		if err != nil {
			return Result{}, err
		}
		hashers[strings.ToUpper(name)] = h
	}
	if cp := cfg.Resume; cp != nil {
		from = cp.Offset
		src.SetBadRanges(cp.BadRanges)
		for name, h := range hashers {
			st, ok := cp.HashStates[name]
			if !ok {
				return Result{}, fmt.Errorf("checkpoint has no %s state", name)
			}
			if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st); err != nil {
				return Result{}, fmt.Errorf("restore %s state: %w", name, err)
			}
		}
	}
	if from%int64(src.BlockSize()) != 0 {
		return Result{}, fmt.Errorf("resume offset %d is not on a block boundary", from)
	}

	runCtx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	// The reader stops on ctx (pause/stop) or on a failure; the rest drains what was fed, so the
	// end is a consistent point.
	streamCtx, cancelStream := context.WithCancel(ctx)
	defer cancelStream()
	blocks, readErr := src.Stream(streamCtx, from)

	var (
		wg       sync.WaitGroup
		failOnce sync.Once
		failErr  error
	)
	fail := func(err error) {
		failOnce.Do(func() { failErr = err; cancelRun(); cancelStream() })
	}

	hashIn := map[string]chan *block{}
	parts := make(chan hashPart, 64)
	for name, h := range hashers {
		ch := make(chan *block, 8)
		hashIn[name] = ch
		wg.Add(1)
		go func(name string, h hash.Hash, ch chan *block) {
			defer wg.Done()
			for b := range ch {
				h.Write(b.Data)
				if b.checkpoint {
					st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
					if err != nil {
						fail(fmt.Errorf("save %s state: %w", name, err))
					}
					parts <- hashPart{name, b.seq, st}
				}
				b.done()
			}
		}(name, h, ch)
	}

	jobs := make(chan *chunkJob, cfg.Workers*4)
	ordered := make(chan *chunkJob, cfg.Workers*8)
	dstPool := sync.Pool{New: func() any { b := make([]byte, cs+cs/8+1024); return &b }}
	var encWG sync.WaitGroup
	for i := 0; i < cfg.Workers; i++ {
		encWG.Add(1)
		go func() {
			defer encWG.Done()
			for j := range jobs {
				j.dst = dstPool.Get().(*[]byte)
				j.enc, j.comp, j.err = w.EncodeChunk(*j.dst, j.data)
				close(j.ready)
			}
		}()
	}

	// Checkpoint assembly: hash states and the writer's position for the same block.
	type pending struct {
		cp    Checkpoint
		parts int
		wrote bool
	}
	var (
		cpMu    sync.Mutex
		cpMap   = map[int64]*pending{}
		lastCP  *Checkpoint
		written atomic.Int64
	)
	written.Store(from)
	if cfg.Resume != nil {
		c := *cfg.Resume
		lastCP = &c
	}
	complete := func(seq int64, p *pending) {
		if p.parts == len(hashers) && p.wrote {
			delete(cpMap, seq)
			c := p.cp
			lastCP = &c
			if cfg.OnCheckpoint != nil {
				cfg.OnCheckpoint(c)
			}
		}
	}
	get := func(seq int64) *pending {
		p := cpMap[seq]
		if p == nil {
			p = &pending{cp: Checkpoint{HashStates: map[string][]byte{}}}
			cpMap[seq] = p
		}
		return p
	}
	partsDone := make(chan struct{})
	go func() {
		defer close(partsDone)
		for hp := range parts {
			cpMu.Lock()
			p := get(hp.seq)
			p.cp.HashStates[hp.name] = hp.state
			p.parts++
			complete(hp.seq, p)
			cpMu.Unlock()
		}
	}()

	// Writer: in order.
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		lastProgress := time.Now()
		for j := range ordered {
			<-j.ready
			err := j.err
			if err == nil && runCtx.Err() == nil {
				err = w.WriteChunk(j.enc, j.comp, j.rawLen)
			}
			dstPool.Put(j.dst)
			if err != nil {
				fail(fmt.Errorf("write chunk at byte %d: %w", j.blk.Off, err))
			} else {
				written.Add(int64(j.rawLen))
			}
			if j.last {
				if j.blk.checkpoint && err == nil {
					var fs json.RawMessage
					if c, ok := w.(Checkpointer); ok {
						fs, err = c.Checkpoint()
						if err != nil {
							fail(fmt.Errorf("format checkpoint: %w", err))
						}
					}
					cpMu.Lock()
					p := get(j.blk.seq)
					p.cp.Offset = j.blk.Off + int64(len(j.blk.Data))
					p.cp.Format = fs
					p.cp.BadRanges = src.BadRanges()
					p.wrote = err == nil
					complete(j.blk.seq, p)
					cpMu.Unlock()
				}
				j.blk.done()
			}
			if cfg.Progress != nil && time.Since(lastProgress) >= cfg.ProgressEvery {
				lastProgress = time.Now()
				cfg.Progress(written.Load())
			}
		}
	}()

	// Feed: blocks in order to the hashers and, cut into chunks, to the encoders.
	lastCPTime := time.Now()
	var seq int64
feed:
	for b := range blocks {
		blk := &block{Block: b, seq: seq, release: src.Release}
		seq++
		if cfg.CheckpointEvery > 0 && time.Since(lastCPTime) >= cfg.CheckpointEvery {
			blk.checkpoint = true
			lastCPTime = time.Now()
		}
		nChunks := (len(b.Data) + cs - 1) / cs
		blk.refs.Store(int32(len(hashers) + 1))
		for _, ch := range hashIn {
			ch <- blk
		}
		for i := 0; i < nChunks; i++ {
			lo, hi := i*cs, min((i+1)*cs, len(b.Data))
			j := &chunkJob{blk: blk, data: b.Data[lo:hi], last: i == nChunks-1, ready: make(chan struct{}), rawLen: hi - lo}
			select {
			case ordered <- j:
			case <-runCtx.Done():
				// Failed: release what this block still holds for the writer and stop.
				blk.done()
				break feed
			}
			jobs <- j
		}
	}
	// If ctx ended, the reader has stopped; drain its channel (it closes promptly).
	for b := range blocks {
		src.Release(b)
	}
	close(jobs)
	close(ordered)
	encWG.Wait()
	<-writerDone
	for _, ch := range hashIn {
		close(ch)
	}
	wg.Wait()
	close(parts)
	<-partsDone

	res := Result{Bytes: written.Load(), BadRanges: src.BadRanges(), Last: lastCP}
	if failErr != nil {
		return res, failErr
	}
	if err := readErr(); err != nil && !errors.Is(err, context.Canceled) {
		return res, err
	}
	if ctx.Err() != nil {
		// Paused or stopped: every block fed is hashed and written, so this is a consistent point.
		cp := Checkpoint{Offset: res.Bytes, HashStates: map[string][]byte{}, BadRanges: res.BadRanges}
		for name, h := range hashers {
			st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
			if err != nil {
				return res, fmt.Errorf("save %s state: %w", name, err)
			}
			cp.HashStates[name] = st
		}
		if c, ok := w.(Checkpointer); ok {
			fs, err := c.Checkpoint()
			if err != nil {
				return res, fmt.Errorf("format checkpoint: %w", err)
			}
			cp.Format = fs
		}
		res.Last = &cp
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

// HashStream hashes everything r yields with each named hash (verification of a written image).
// progress, if set, gets the bytes read so far.
func HashStream(ctx context.Context, r io.Reader, names []string, progress func(int64)) (map[string]string, error) {
	hs := map[string]hash.Hash{}
	ws := make([]io.Writer, 0, len(names))
	for _, n := range names {
		h, err := NewHash(n)
		if err != nil {
			return nil, err
		}
		hs[strings.ToUpper(n)] = h
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
