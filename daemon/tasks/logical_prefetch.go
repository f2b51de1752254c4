package tasks

import (
	"context"
	"errors"
	"io"
	"math/bits"
	"sync"

	"golang.org/x/sync/semaphore"

	"github.com/evidenced/evidenced/imaging/logical"
	"github.com/evidenced/evidenced/imaging/output"
)

// A logical image is mostly small files. Copied one after the other, each file's reading and its
// own hashes ran on the task's goroutine between the container's stream hashes, and the copy used
// about one core of two. Small files are therefore read ahead, in the selection's order, by a few
// workers that also compute each file's own hashes (output.Container.Prepare); the copy loop only
// stores them (stream hashes and chunks). Larger files stream through the copy loop as before.
// What is read ahead is bounded in files and bytes, and dropped unwritten when the copy stops: a
// pause resumes at the first file not in the container, as without read-ahead.

// prefetchLimits bound the read-ahead.
type prefetchLimits struct {
	maxFile  int64 // larger files are not read ahead
	maxBytes int64 // content bytes read ahead and not yet stored (≥ maxFile)
	maxFiles int   // files read ahead and not yet stored
	workers  int
}

// defaultPrefetch: files up to 1 MiB (the container writer's read size), 8 MiB and 128 files in
// flight, two readers: the stream's hashes and chunks stay the copy loop's, and the chunks'
// compression has its own workers.
func defaultPrefetch() prefetchLimits {
	return prefetchLimits{maxFile: 1 << 20, maxBytes: 8 << 20, maxFiles: 128, workers: 2}
}

// A group of files handed to a read-ahead worker at once holds up to prefetchGroupFiles files and
// ends with the one that reaches prefetchGroupBytes.
const (
	prefetchGroupFiles = 16
	prefetchGroupBytes = 1 << 20
)

// readAhead is one file read ahead of the copy loop.
type readAhead struct {
	index   int           // in the selection
	buf     *[]byte       // the read's buffer, back to the pool once stored
	size    int64         // the entry's size: the bytes it holds of the read-ahead's budget
	done    chan struct{} // closed when the fields below are set
	p       output.Prepared
	skipped bool  // not read: the copy was stopping
	openErr error // the file could not be opened: nothing was read
	readErr error // the read stopped short with this error; p holds what was read
	gone    bool  // the source drive was gone when the read ended: p is not the file's content
}

// prefetcher reads the small files of a run's selection ahead, in order.
type prefetcher struct {
	lim    prefetchLimits
	queue  chan *readAhead // the read-aheads in selection order; closed when no more come
	bytes  *semaphore.Weighted
	bufs   bufPool
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// prefetchable reports whether the copy loop takes item it from the read-ahead.
func (l prefetchLimits) prefetchable(it logicalItem) bool {
	return !it.e.Dir && it.e.Size <= l.maxFile
}

// startPrefetch starts reading ahead the prefetchable items from index from. stop ends it.
func (r *logicalRun) startPrefetch(ctx context.Context, from int) *prefetcher {
	ctx, cancel := context.WithCancel(ctx)
	lim := r.prefetch
	lim.maxFile = min(lim.maxFile, lim.maxBytes) // a file larger than the budget would wait forever
	pf := &prefetcher{lim: lim, queue: make(chan *readAhead, lim.maxFiles), bytes: semaphore.NewWeighted(lim.maxBytes), cancel: cancel}
	work := make(chan []*readAhead)
	pf.wg.Go(func() {
		defer close(pf.queue)
		defer close(work)
		// The workers run at the imaging's priority on threads of their own (Background.Go), where
		// waking one costs two context switches: they are handed groups of files, not one file
		// each (one by one, that made a copy 20% slower). A group goes out when it is full, or
		// before the feeder would wait for the copy loop, which may be waiting for that group.
		var group []*readAhead
		var groupBytes int64
		flush := func() bool {
			if len(group) == 0 {
				return true
			}
			select {
			case work <- group:
				group, groupBytes = nil, 0
				return true
			case <-ctx.Done():
				for _, ra := range group {
					ra.skipped = true
					close(ra.done)
				}
				group = nil
				return false
			}
		}
		defer flush()
		for i := from; i < len(r.items); i++ {
			if !lim.prefetchable(r.items[i]) {
				continue
			}
			size := r.items[i].e.Size
			// Released by the copy loop once the file is stored (next); never, when the copy
			// stops, which is when nothing waits for the bytes any more.
			if !pf.bytes.TryAcquire(size) {
				if !flush() {
					return
				}
				if err := pf.bytes.Acquire(ctx, size); err != nil {
					return
				}
			}
			ra := &readAhead{index: i, size: size, done: make(chan struct{})}
			select {
			case pf.queue <- ra:
			default:
				if !flush() {
					return
				}
				select {
				case pf.queue <- ra:
				case <-ctx.Done():
					return
				}
			}
			group = append(group, ra)
			if groupBytes += size; len(group) == prefetchGroupFiles || groupBytes >= prefetchGroupBytes {
				if !flush() {
					return
				}
			}
		}
	})
	for range lim.workers {
		pf.wg.Add(1)
		r.m.cfg.Background.Go(func() { // reading and digests below the API's priority
			defer pf.wg.Done()
			for g := range work {
				for _, ra := range g {
					r.readAhead(ctx, ra, &pf.bufs)
				}
			}
		})
	}
	return pf
}

// readAhead reads one file whole and prepares it for the container.
func (r *logicalRun) readAhead(ctx context.Context, ra *readAhead, bufs *bufPool) {
	defer close(ra.done)
	if ctx.Err() != nil {
		ra.skipped = true
		return
	}
	it := r.items[ra.index]
	rc, err := it.fs.Open(it.e)
	if err != nil {
		ra.openErr = err
		ra.gone = r.rd.gone.Load() != nil
		return
	}
	ra.buf = bufs.get(it.e.Size)
	n, err := io.ReadFull(rc, *ra.buf)
	rc.Close()
	ra.readErr = err
	ra.gone = r.rd.gone.Load() != nil
	ra.p = r.sink.Prepare((*ra.buf)[:n])
}

// next returns item i's read-ahead once it is read; nil when the prefetcher stopped first.
func (pf *prefetcher) next(i int) (*readAhead, error) {
	ra, ok := <-pf.queue
	if !ok {
		return nil, nil
	}
	if ra.index != i {
		return nil, errors.New("read-ahead out of order") // a bug: the loop and the reader skip alike
	}
	<-ra.done
	return ra, nil
}

// release gives back the memory of a read-ahead the copy loop has stored.
func (pf *prefetcher) release(ra *readAhead) {
	pf.bufs.put(ra.buf)
	ra.buf, ra.p = nil, output.Prepared{}
	pf.bytes.Release(ra.size)
}

// bufPool recycles the read-ahead's buffers by power-of-two capacity: a fresh buffer per file made
// the garbage collector run every few megabytes of a copy, and zeroed memory that is read over.
// What the pool holds is bounded by the read-ahead's budget: at most twice its bytes in flight.
type bufPool struct{ classes [bits.UintSize]sync.Pool }

// get returns a buffer of n bytes (its content is undefined).
func (b *bufPool) get(n int64) *[]byte {
	c := bits.Len64(uint64(max(n, 4096) - 1))
	if p, ok := b.classes[c].Get().(*[]byte); ok {
		*p = (*p)[:n]
		return p
	}
	buf := make([]byte, n, 1<<c)
	return &buf
}

func (b *bufPool) put(p *[]byte) {
	if p != nil {
		b.classes[bits.Len64(uint64(cap(*p)-1))].Put(p)
	}
}

// stop ends the read-ahead, dropping what was read and not stored, and waits for the readers:
// none touches the source after stop returns.
func (pf *prefetcher) stop() {
	pf.cancel()
	pf.wg.Wait()
}

// lockedFS lets the copy loop and the read-ahead workers share a file system whose readers are not
// safe for concurrent use (logical.ConcurrentOpen): each Open, Read and Close holds the run's
// lock. Reading is cheap next to hashing and compressing, which happen outside the lock.
type lockedFS struct {
	logical.FS
	mu *sync.Mutex
}

func (l lockedFS) Open(e logical.Entry) (io.ReadCloser, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rc, err := l.FS.Open(e)
	if err != nil {
		return nil, err
	}
	return lockedReader{rc: rc, mu: l.mu}, nil
}

type lockedReader struct {
	rc io.ReadCloser
	mu *sync.Mutex
}

func (l lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rc.Read(p)
}

func (l lockedReader) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rc.Close()
}
