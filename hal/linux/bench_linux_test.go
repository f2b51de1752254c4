package linux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/imaging/source"
	"github.com/evidenced/evidenced/internal/directio"
	"golang.org/x/sys/unix"
)

// TestBenchReaderVsDD (make bench; EVIDENCED_BENCH_HAL=MiB): the Reader on a loop device against
// `dd iflag=direct bs=1M` on the same device, in back-to-back rounds whose order rotates (both see
// about the same load on a shared machine; the median of the rounds' ratios is the figure, so a
// burst of load spoils a round, not the result), and the time from losetup to the plugged event.
// The Reader runs two ways: one 1 MiB read at a time like dd, and as the imaging engine drives it
// (imaging/source, 1 MiB reads, 4 in flight), shown for comparison. A plain Go loop of 1 MiB
// O_DIRECT preads runs in the rotation too: on some machines every Go program trails dd (a loaded
// 2-core machine, median 0.70-0.83; an idle 2-core AMD EPYC VM, 0.84, where the Reader came out
// 0.90-0.93), the cost of Go's syscall path, which the Reader cannot shed. So the test fails when
// the Reader one read at a time is below 0.95 × that plain loop: what the Reader's own code costs.
// Its ratio to dd is reported beside it.
func TestBenchReaderVsDD(t *testing.T) {
	mib, _ := strconv.Atoi(os.Getenv("EVIDENCED_BENCH_HAL"))
	if mib <= 0 {
		t.Skip("set EVIDENCED_BENCH_HAL=<MiB> (make bench)")
	}
	needLoop(t)
	dir, err := os.MkdirTemp("/var/tmp", "evidenced-halbench")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	img := dir + "/bench.img"
	if out, err := exec.Command("dd", "if=/dev/urandom", "of="+img, "bs=1M", fmt.Sprintf("count=%d", mib), "status=none").CombinedOutput(); err != nil {
		t.Fatalf("dd: %v %s", err, out)
	}
	n := freeLoop(t)
	b := loopBoard(t, board.PortDesc{Name: "SATA1", Attach: fmt.Sprintf("loop-%d", n), Mode: "source"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := b.Subscribe(ctx)
	start := time.Now()
	attach(t, n, img)
	waitEvent(t, ev, "SATA1", hal.Plugged, 5*time.Second)
	plugged := time.Since(start)
	p, _ := b.Port("SATA1")
	dev := fmt.Sprintf("/dev/loop%d", n)
	exec.Command("cat", img).Run() // the backing file in the page cache for both
	size := float64(int64(mib) << 20)
	runDD := func() time.Duration {
		t0 := time.Now()
		if out, err := exec.Command("dd", "if="+dev, "of=/dev/null", "iflag=direct", "bs=1M", "status=none").CombinedOutput(); err != nil {
			t.Fatalf("dd: %v %s", err, out)
		}
		return time.Since(t0)
	}
	runReader := func() time.Duration {
		t0 := time.Now()
		r, err := p.Drive().Open()
		if err != nil {
			t.Fatal(err)
		}
		buf := directio.Buffer(readSize)
		for off := int64(0); ; off += int64(len(buf)) {
			_, err := r.ReadAt(buf, off)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
		return time.Since(t0)
	}
	// The floor of Go code: the same reads as dd, straight to the system call.
	runPlain := func() time.Duration {
		t0 := time.Now()
		f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_DIRECT, 0)
		if err != nil {
			t.Fatal(err)
		}
		buf := directio.Buffer(readSize)
		for off := int64(0); ; off += int64(len(buf)) {
			n, err := unix.Pread(int(f.Fd()), buf, off) // as the Reader calls it
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		f.Close()
		return time.Since(t0)
	}
	// The Reader as the imaging engine drives it: imaging/source with 1 MiB reads, 4 in flight.
	runEngine := func() time.Duration {
		t0 := time.Now()
		r, err := p.Drive().Open()
		if err != nil {
			t.Fatal(err)
		}
		sr := source.New(r, r.Size(), source.Config{BlockSize: 1 << 20, Depth: 4, SectorSize: r.SectorSize()})
		blocks, errp := sr.Stream(ctx, 0)
		for b := range blocks {
			sr.Release(b)
		}
		if err := errp(); err != nil {
			t.Fatal(err)
		}
		r.Close()
		return time.Since(t0)
	}
	// Runs go back to back in rounds, the order rotating, the order alternating, so that both sides of a pair see about the
	// same load on a shared machine; the median of the pairs' ratios is the figure (a burst of
	// load spoils a pair, not the result), the best of each side is shown too.
	best := map[string]time.Duration{}
	var one, engine, plain, overGo []float64 // per round: dd time / Reader time; plain Go time / Reader time
	for round := 0; round < benchRounds; round++ {
		runs := map[string]func() time.Duration{"dd": runDD, "reader": runReader, "engine": runEngine, "plain": runPlain}
		order := []string{"dd", "reader", "engine", "plain"}
		took := map[string]time.Duration{}
		for i := range order {
			k := order[(i+round)%len(order)]
			took[k] = runs[k]()
			keepBest(best, k, took[k])
		}
		one = append(one, took["dd"].Seconds()/took["reader"].Seconds())
		engine = append(engine, took["dd"].Seconds()/took["engine"].Seconds())
		plain = append(plain, took["dd"].Seconds()/took["plain"].Seconds())
		overGo = append(overGo, took["plain"].Seconds()/took["reader"].Seconds())
	}
	slices.Sort(one)
	slices.Sort(engine)
	slices.Sort(plain)
	slices.Sort(overGo)
	median := func(v []float64) float64 { return v[len(v)/2] }
	rate := func(d time.Duration) float64 { return size / 1e6 / d.Seconds() }
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("%d MiB loop device, best of %d: dd iflag=direct bs=1M %.0f MB/s, Reader one 1 MiB read at a time %.0f MB/s, Reader as the engine drives it (1 MiB × 4 in flight) %.0f MB/s; "+
		"median of the rounds' ratios to dd: one at a time %.3f (%.2f to %.2f), engine %.3f (%.2f to %.2f), plain Go pread loop %.3f (%.2f to %.2f); "+
		"losetup to plugged %v; load average %s",
		mib, benchRounds, rate(best["dd"]), rate(best["reader"]), rate(best["engine"]), median(one), one[0], one[len(one)-1],
		median(engine), engine[0], engine[len(engine)-1], median(plain), plain[0], plain[len(plain)-1],
		plugged, strings.Join(strings.Fields(string(load))[:3], " "))
	t.Logf("Reader at %.3f × dd and %.3f × a plain Go pread loop (median of the rounds)", median(one), median(overGo))
	if r := median(overGo); r < 0.95 {
		t.Errorf("Reader one read at a time at %.3f × a plain Go pread loop, want ≥ 0.95", r)
	}
}

// benchRounds is how many rounds of dd and the two Reader runs the benchmark times.
const benchRounds = 15

// readSize is the Reader's request size in the benchmark (dd: 1 MiB).
var readSize = 1 << 20

func keepBest(m map[string]time.Duration, k string, d time.Duration) {
	if old, ok := m[k]; !ok || d < old {
		m[k] = d
	}
}
