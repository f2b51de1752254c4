package pipeline

import (
	"runtime"
	"sync"
	"time"
)

// BackgroundNice is the kernel nice value of the threads Background runs stages on.
const BackgroundNice = 10

// Background runs the CPU-bound stages of pipelines (hashes, encoders) on OS threads of their own at
// a lower kernel priority (BackgroundNice) than the rest of the process, so that the kernel, which
// has priorities where Go's scheduler has none, serves the API ahead of the imaging: a check-task
// request is answered while four drives image instead of waiting behind their work in Go's run
// queue. Each stage goroutine locks its thread and lowers the thread's priority; it never unlocks
// it, so the thread ends with the goroutine and no other goroutine ever runs on it at that priority.
//
// The encoders are shared: one per CPU, serving every run's chunks in the order they come, so
// four drives imaging at once have two encoder threads, not eight. Each run's hashes have a thread
// each (a hash is one sequential stream).
//
// A locked goroutine still needs one of the runtime's Ps to run, so Background raises GOMAXPROCS by
// the number of stage threads alive: the API keeps the Ps it had, and the kernel, not the Go
// runtime, shares the CPUs between the threads.
//
// Measured on two cores (E01 fast of the 2 GiB corpus): four drives at once through the API with 50
// check-task pollers, p99 14.5 ms -> 2.8-3.9 ms at the same wall time within the noise; one drive
// through the CLI 6.0-6.8 s -> 5.0-5.8 s.
//
// One Background serves a whole process (it owns GOMAXPROCS); create it in main.
type Background struct {
	mu     sync.Mutex
	base   int // GOMAXPROCS when no stage runs
	extra  int // stage threads alive
	encode chan encodeBatch
	wg     sync.WaitGroup

	work     chan func() // to a worker of Go that waits for work (unbuffered)
	idleExit time.Duration
}

// NewBackground returns a Background over the process's current GOMAXPROCS.
func NewBackground() *Background {
	return &Background{base: runtime.GOMAXPROCS(0), work: make(chan func()), idleExit: workerIdleExit}
}

// workerIdleExit is how long a worker of Go waits for more work before its thread ends.
const workerIdleExit = 10 * time.Second

// CPUs is the GOMAXPROCS the process had before any stage ran: what the work should be sized to
// (GOMAXPROCS itself is raised while stages run). Without a Background (nil) it is GOMAXPROCS.
func (b *Background) CPUs() int {
	if b == nil {
		return runtime.GOMAXPROCS(0)
	}
	return b.base
}

// add changes the number of stages alive by n and GOMAXPROCS with it.
func (b *Background) add(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.extra += n
	runtime.GOMAXPROCS(b.base + b.extra)
}

// enter is called first on a stage's goroutine: it locks the goroutine to its thread and lowers the
// thread's priority. It reports whether the stage runs in the background (false: the priority
// could not be lowered, and the goroutine is an ordinary one, unlocked again).
func (b *Background) enter() bool {
	runtime.LockOSThread()
	// Never the main thread: the runtime keeps it when its goroutine ends (its priority would stay
	// lowered), and its nice value is the one ps and top show for the whole process. A program
	// keeps the main thread for its main goroutine (runtime.LockOSThread first thing in main) so
	// that no stage lands there and runs at the normal priority.
	if onMainThread() {
		runtime.UnlockOSThread()
		return false
	}
	if err := lowerThreadPriority(BackgroundNice); err != nil {
		runtime.UnlockOSThread()
		return false
	}
	return true
}

// encoders returns the queue of the shared encoders, starting them on first use.
func (b *Background) encoders() chan<- encodeBatch {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.encode == nil {
		b.encode = make(chan encodeBatch, b.base*4)
		for range b.base {
			b.wg.Go(func() {
				yielding := !b.enter()
				for batch := range b.encode {
					batch.e.encode(batch.jobs, yielding)
				}
			})
		}
		b.extra += b.base
		runtime.GOMAXPROCS(b.base + b.extra)
	}
	return b.encode
}

// Close stops the shared encoders once no run uses them, and gives GOMAXPROCS back. Runs must not
// start after it.
func (b *Background) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.encode == nil {
		return
	}
	close(b.encode)
	b.wg.Wait()
	b.encode = nil
	b.extra -= b.base
	runtime.GOMAXPROCS(b.base + b.extra)
}

// Go runs f on a worker thread at BackgroundNice and returns at once: the go statement of work that
// is not a pipeline's, such as the digests and compression of a logical copy, whose writer starts
// goroutines per batch of chunks. A worker waiting for work takes f; when none waits, a new worker
// starts (and GOMAXPROCS is raised by one, as for a stage). A worker waits workerIdleExit for more
// work before it ends, so that goroutines started batch after batch reuse threads instead of
// creating one (and changing GOMAXPROCS, which stops the world) each. A nil Background runs f as an
// ordinary goroutine.
func (b *Background) Go(f func()) {
	if b == nil {
		go f()
		return
	}
	select {
	case b.work <- f:
		return
	default:
	}
	b.add(1)
	go func() {
		b.enter()
		idle := time.NewTimer(b.idleExit)
		for {
			f()
			idle.Reset(b.idleExit)
			select {
			case f = <-b.work:
			case <-idle.C:
				b.add(-1)
				return
			}
		}
	}()
}

// Do runs f on a thread of its own at BackgroundNice and returns when f has: for CPU-bound work
// outside a run, such as verifying an image. A nil Background runs f on the calling goroutine.
func (b *Background) Do(f func()) {
	if b == nil {
		f()
		return
	}
	b.add(1)
	defer b.add(-1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.enter()
		f()
	}()
	<-done
}
