package linux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/internal/directio"
)

// TestBenchReaderVsDD (make bench; EVIDENCED_BENCH_HAL=MiB): the Reader on a loop device against
// `dd iflag=direct bs=1M` on the same device, alternated seven times, best of each, and the time
// from losetup to the plugged event. It fails when the Reader is below 0.95 × dd.
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
	best := map[string]time.Duration{}
	for round := 0; round < 7; round++ {
		t0 := time.Now()
		if out, err := exec.Command("dd", "if="+dev, "of=/dev/null", "iflag=direct", "bs=1M", "status=none").CombinedOutput(); err != nil {
			t.Fatalf("dd: %v %s", err, out)
		}
		keepBest(best, "dd", time.Since(t0))
		t0 = time.Now()
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
		keepBest(best, "reader", time.Since(t0))
	}
	rate := func(d time.Duration) float64 { return size / 1e6 / d.Seconds() }
	ratio := rate(best["reader"]) / rate(best["dd"])
	t.Logf("%d MiB loop device: dd iflag=direct bs=1M %.0f MB/s, hal/linux Reader (1 MiB) %.0f MB/s, ratio %.3f; losetup to plugged %v",
		mib, rate(best["dd"]), rate(best["reader"]), ratio, plugged)
	if ratio < 0.95 {
		t.Errorf("Reader at %.3f × dd, want ≥ 0.95", ratio)
	}
}

// readSize is the Reader's request size in the benchmark (dd: 1 MiB).
var readSize = 1 << 20

func keepBest(m map[string]time.Duration, k string, d time.Duration) {
	if old, ok := m[k]; !ok || d < old {
		m[k] = d
	}
}
