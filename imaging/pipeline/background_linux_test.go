package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/formats/digest"
	"github.com/evidenced/evidenced/formats/raw"
	"github.com/evidenced/evidenced/imaging/source"
)

// niceOf reads a thread's nice value from its stat file in /proc (field 19, counted after the
// parenthesised command name); -1 when it cannot.
func niceOf(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 17 {
		return -1
	}
	n, err := strconv.Atoi(f[16])
	if err != nil {
		return -1
	}
	return n
}

// threadNice is the calling thread's nice value.
func threadNice() int { return niceOf("/proc/thread-self/stat") }

// backgroundThreads counts the process's threads at BackgroundNice.
func backgroundThreads() int {
	paths, _ := filepath.Glob("/proc/self/task/*/stat")
	n := 0
	for _, p := range paths {
		if niceOf(p) == BackgroundNice {
			n++
		}
	}
	return n
}

// probeWriter is a raw writer that records, as the pipeline calls it, the nice value of every
// encoding thread, the most threads seen at BackgroundNice, and GOMAXPROCS.
type probeWriter struct {
	*raw.Writer
	mu        sync.Mutex
	nices     map[int]int // nice -> chunks encoded at it
	bgThreads int
	procs     int
	failAt    int // WriteChunk fails at this call (0: never)
	writes    int
}

func (p *probeWriter) EncodeChunk(dst, src []byte) ([]byte, bool, error) {
	n := threadNice()
	p.mu.Lock()
	p.nices[n]++
	p.mu.Unlock()
	return p.Writer.EncodeChunk(dst, src)
}

func (p *probeWriter) WriteChunk(enc []byte, c bool, rawLen int) error {
	p.writes++
	if p.writes == p.failAt {
		return errors.New("target full")
	}
	if p.writes%8 == 0 {
		p.bgThreads = max(p.bgThreads, backgroundThreads())
		p.procs = max(p.procs, runtime.GOMAXPROCS(0))
	}
	return p.Writer.WriteChunk(enc, c, rawLen)
}

// With a Background, every chunk is encoded on a thread at BackgroundNice, the hashes run on such
// threads too, GOMAXPROCS is raised by them while they live and comes back after, and the image
// and hashes are those of an ordinary run.
func TestBackgroundRunsBelowThePriorityOfTheRest(t *testing.T) {
	if n := threadNice(); n != 0 {
		t.Skipf("the test process runs at nice %d", n)
	}
	base := runtime.GOMAXPROCS(0)
	bg := NewBackground()
	data := random(t, 6<<20+512)
	out := &memAt{}
	w := &probeWriter{Writer: raw.NewWriter(out, 32<<10), nices: map[int]int{}}
	src := source.New(bytes.NewReader(data), int64(len(data)), source.Config{BlockSize: 256 << 10})
	hashes := []digest.Name{digest.MD5, digest.SHA1}
	res, err := Run(context.Background(), src, w, Config{Hashes: hashes, Background: bg})
	if err != nil {
		t.Fatal(err)
	}
	m, s := sums(data)
	if res.Hashes["MD5"] != m || res.Hashes["SHA1"] != s || !bytes.Equal(out.buf, data) {
		t.Fatalf("hashes %v (want %s %s), image equal %v", res.Hashes, m, s, bytes.Equal(out.buf, data))
	}
	chunks := (len(data) + 32<<10 - 1) / (32 << 10)
	if w.nices[BackgroundNice] != chunks || len(w.nices) != 1 {
		t.Fatalf("chunks encoded per nice value %v, want all %d at %d", w.nices, chunks, BackgroundNice)
	}
	if want := base + len(hashes); w.bgThreads < want {
		t.Fatalf("at most %d threads at nice %d during the run, want the %d encoders and %d hashes",
			w.bgThreads, BackgroundNice, base, len(hashes))
	}
	if want := base + base + len(hashes); w.procs != want {
		t.Fatalf("GOMAXPROCS %d during the run, want %d: %d, the encoders and the hashes", w.procs, want, base)
	}
	if got := runtime.GOMAXPROCS(0); got != base+base {
		t.Fatalf("GOMAXPROCS %d after the run, want %d: the shared encoders stay", got, base+base)
	}
	bg.Close()
	if got := runtime.GOMAXPROCS(0); got != base {
		t.Fatalf("GOMAXPROCS %d after Close, want %d", got, base)
	}
	if n := threadNice(); n != 0 {
		t.Fatalf("the test's own thread is at nice %d", n)
	}
}

// Runs share the Background's encoders: four at once each get their own image and hashes, and a
// run whose target fails ends with the error without holding up the others.
func TestBackgroundSharedByRuns(t *testing.T) {
	base := runtime.GOMAXPROCS(0)
	bg := NewBackground()
	defer bg.Close()
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range 5 {
		wg.Go(func() {
			data := random(t, (i+1)<<20+512*i)
			out := &memAt{}
			w := &probeWriter{Writer: raw.NewWriter(out, 32<<10), nices: map[int]int{}}
			if i == 4 {
				w.failAt = 40
			}
			src := source.New(bytes.NewReader(data), int64(len(data)), source.Config{BlockSize: 128 << 10})
			res, err := Run(context.Background(), src, w, Config{Hashes: []digest.Name{digest.MD5, digest.SHA1}, Background: bg})
			switch m, s := sums(data); {
			case i == 4 && (err == nil || !strings.Contains(err.Error(), "target full")):
				errs[i] = fmt.Errorf("run %d: err %v, want the target's", i, err)
			case i == 4:
			case err != nil:
				errs[i] = fmt.Errorf("run %d: %w", i, err)
			case res.Hashes["MD5"] != m || res.Hashes["SHA1"] != s || !bytes.Equal(out.buf, data):
				errs[i] = fmt.Errorf("run %d: hashes %v, want %s %s; image equal %v", i, res.Hashes, m, s, bytes.Equal(out.buf, data))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := runtime.GOMAXPROCS(0); got != base+base {
		t.Fatalf("GOMAXPROCS %d after the runs, want %d (the shared encoders)", got, base+base)
	}
}

// Do runs work at BackgroundNice with one more P while it runs, and leaves the caller's thread as it
// was; a nil Background runs it in place.
func TestBackgroundDo(t *testing.T) {
	base := runtime.GOMAXPROCS(0)
	bg := NewBackground()
	var nice, procs int
	bg.Do(func() { nice, procs = threadNice(), runtime.GOMAXPROCS(0) })
	if nice != BackgroundNice || procs != base+1 {
		t.Fatalf("Do ran at nice %d with GOMAXPROCS %d, want %d and %d", nice, procs, BackgroundNice, base+1)
	}
	if got := runtime.GOMAXPROCS(0); got != base {
		t.Fatalf("GOMAXPROCS %d after Do, want %d", got, base)
	}
	var none *Background
	none.Do(func() { nice = threadNice() })
	if nice != 0 || threadNice() != 0 {
		t.Fatalf("a nil Background ran at nice %d; the caller is at %d", nice, threadNice())
	}
}

// Go runs each function on a worker thread at BackgroundNice; a worker that waits for work is
// reused rather than a thread started per call; as many workers run as functions run at once,
// each raising GOMAXPROCS; idle workers end, and GOMAXPROCS comes back.
func TestBackgroundGo(t *testing.T) {
	base := runtime.GOMAXPROCS(0)
	bg := NewBackground()
	bg.idleExit = 200 * time.Millisecond
	tids := map[int]bool{}
	for range 20 {
		done := make(chan struct{})
		var nice, tid int
		bg.Go(func() { nice, tid = threadNice(), unix.Gettid(); close(done) })
		<-done
		if nice != BackgroundNice {
			t.Fatalf("Go ran at nice %d, want %d", nice, BackgroundNice)
		}
		tids[tid] = true
		time.Sleep(time.Millisecond) // the worker is back waiting for work
	}
	if len(tids) > 2 {
		t.Fatalf("20 calls one after the other ran on %d threads: workers are not reused", len(tids))
	}

	const n = 4
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(n)
	var mu sync.Mutex
	threads := map[int]bool{}
	for range n {
		bg.Go(func() {
			mu.Lock()
			threads[unix.Gettid()] = true
			mu.Unlock()
			started.Done()
			<-release // all n at once: none can take another's work
		})
	}
	started.Wait()
	if len(threads) != n || runtime.GOMAXPROCS(0) < base+n {
		t.Fatalf("%d functions at once ran on %d threads with GOMAXPROCS %d, want %d threads and at least %d", n, len(threads), runtime.GOMAXPROCS(0), n, base+n)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for runtime.GOMAXPROCS(0) != base || backgroundThreads() != 0 { // a thread ends just after its worker
		if time.Now().After(deadline) {
			t.Fatalf("after the workers' idle time: GOMAXPROCS %d (want %d), %d threads at BackgroundNice (want 0)", runtime.GOMAXPROCS(0), base, backgroundThreads())
		}
		time.Sleep(20 * time.Millisecond)
	}

	var none *Background
	done := make(chan int)
	none.Go(func() { done <- threadNice() })
	if nice := <-done; nice != 0 {
		t.Fatalf("a nil Background's Go ran at nice %d", nice)
	}
}
