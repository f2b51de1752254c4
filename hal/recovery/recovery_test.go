package recovery

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/hal/sim"
)

type logBuf struct {
	mu    sync.Mutex
	lines []string
	hook  func(string)
}

func (l *logBuf) log(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lines = append(l.lines, msg)
	hook := l.hook
	l.mu.Unlock()
	if hook != nil {
		hook(msg)
	}
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// freezing starts a sim board whose SATA1 drive freezes at the given LBA, powers it on and waits
// for the drive.
func freezing(t *testing.T, size int, freezeAt int64, times int) (*sim.Board, hal.Port, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	p := filepath.Join(t.TempDir(), "frozen.img")
	if err := os.WriteFile(p, data, 0o444); err != nil {
		t.Fatal(err)
	}
	desc := board.Description{Kind: board.KindSim, ApplianceID: "E1", Ports: []board.PortDesc{{Name: "SATA1", Mode: "source",
		Drive: &board.DriveDesc{Path: p, Model: "Freezing Disk", Serial: "FRZ1", FreezeAt: []int64{freezeAt}, FreezeTimes: times}}}}
	b, err := sim.New(desc, sim.Options{SpinUp: 20 * time.Millisecond, PlugRoots: []string{os.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	port, _ := b.Port("SATA1")
	if err := port.PowerOn(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitReady(t, port)
	return b, port, data
}

func waitReady(t *testing.T, p hal.Port) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); p.State() != hal.StateReady; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("port %s: %s", p.Name(), p.State())
		}
	}
}

func fast(l *logBuf) Config {
	return Config{Timeout: 150 * time.Millisecond, ResetWait: 50 * time.Millisecond, OffTime: 30 * time.Millisecond, ReadyWait: 2 * time.Second, Cycles: 2, Log: l.log}
}

func open(t *testing.T, p hal.Port, cfg Config) *Reader {
	t.Helper()
	d := p.Drive()
	r, err := d.Open()
	if err != nil {
		t.Fatal(err)
	}
	rr := New(p, d, r, cfg)
	t.Cleanup(func() { rr.Close() })
	return rr
}

// TestFreezeOnceRecovered: a drive that freezes once at an LBA: reset (no help), one power cycle,
// same serial, the read is done again and the data is right; every step is logged.
func TestFreezeOnceRecovered(t *testing.T) {
	_, port, data := freezing(t, 1<<20, 700, 1)
	var l logBuf
	r := open(t, port, fast(&l))
	buf := make([]byte, 64<<10)
	got := make([]byte, 0, len(data))
	start := time.Now()
	for off := 0; off < len(data); off += len(buf) {
		n, err := r.ReadAt(buf, int64(off))
		if err != nil {
			t.Fatalf("at %d: %v\nlog:\n%s", off, err, l.String())
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data read through the recovery differs from the drive's")
	}
	log := l.String()
	for _, want := range []string{"LBA 640 did not return within 150ms", "SCSI device reset", "still frozen", "power cycle 1 of 2", "same serial FRZ1; reading again at LBA 640"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "power cycle 2") {
		t.Errorf("a second cycle for a drive that froze once:\n%s", log)
	}
	t.Logf("recovery of one freeze took %v in all (timeout 150ms, off 30ms)", time.Since(start))
}

// TestFreezeForeverGivenUp: a drive that freezes at every try: after Cycles power cycles the
// range is a MediaError, later reads of it fail at once, and the rest of the drive reads.
func TestFreezeForeverGivenUp(t *testing.T) {
	_, port, data := freezing(t, 1<<20, 300, 1000)
	var l logBuf
	r := open(t, port, fast(&l))
	buf := make([]byte, 64<<10)
	_, err := r.ReadAt(buf, 256*512)
	var me *hal.MediaError
	if !errors.As(err, &me) || me.LBA != 256 || me.Count != 128 {
		t.Fatalf("err = %v, want a MediaError for LBA 256+128\n%s", err, l.String())
	}
	if !strings.Contains(l.String(), "power cycle 2 of 2") || !strings.Contains(l.String(), "LBA 256-383 still froze after 2 power cycles: recorded unreadable") {
		t.Fatalf("log:\n%s", l.String())
	}
	start := time.Now()
	if _, err := r.ReadAt(buf[:512], 300*512); !errors.As(err, &me) || me.LBA != 300 || me.Count != 1 || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("read inside the given-up range: %v after %v", err, time.Since(start))
	}
	if n, err := r.ReadAt(buf, 0); err != nil || n != len(buf) || !bytes.Equal(buf, data[:len(buf)]) {
		t.Fatalf("read outside the range: %d %v", n, err)
	}
}

// TestFreezeAnotherDriveAfterCycle: when another drive answers after the power cycle, the read
// fails with hal.ErrGone naming the serials.
func TestFreezeAnotherDriveAfterCycle(t *testing.T) {
	b, port, _ := freezing(t, 1<<20, 10, 1000)
	other := filepath.Join(t.TempDir(), "other.img")
	os.WriteFile(other, make([]byte, 1<<20), 0o444)
	var l logBuf
	l.hook = func(msg string) {
		if strings.Contains(msg, "power cycle 1") { // swapped while the power is off
			if err := b.Unplug("SATA1"); err != nil {
				t.Error(err)
			}
			if err := b.Plug("SATA1", other, "Other Disk", "OTHER9"); err != nil {
				t.Error(err)
			}
		}
	}
	r := open(t, port, fast(&l))
	_, err := r.ReadAt(make([]byte, 8192), 0) // LBA 0-15: the frozen one is in
	if !errors.Is(err, hal.ErrGone) || !strings.Contains(err.Error(), "serial OTHER9, not FRZ1") {
		t.Fatalf("err = %v\n%s", err, l.String())
	}
}

// TestConcurrentReadsOneRecovery: reads in flight while the drive freezes are cut by the power
// cycle and read again; one cycle serves them all.
func TestConcurrentReadsOneRecovery(t *testing.T) {
	_, port, data := freezing(t, 4<<20, 2048, 1)
	var l logBuf
	r := open(t, port, fast(&l))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			buf := make([]byte, 512<<10)
			off := int64(i) * int64(len(buf))
			n, err := r.ReadAt(buf, off)
			if err == nil && !bytes.Equal(buf[:n], data[off:off+int64(n)]) {
				err = fmt.Errorf("read at %d: wrong data", off)
			}
			if err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c := strings.Count(l.String(), "power cycle "); c != 1 {
		t.Errorf("%d power cycles, want 1:\n%s", c, l.String())
	}
}

// TestSlowDriveIsNotFrozen: reads queued behind each other on a slow drive take longer than the
// timeout, but the drive keeps answering: no reset, no power cycle.
func TestSlowDriveIsNotFrozen(t *testing.T) {
	data := make([]byte, 2<<20)
	rand.Read(data)
	p := filepath.Join(t.TempDir(), "slow.img")
	os.WriteFile(p, data, 0o444)
	desc := board.Description{Kind: board.KindSim, ApplianceID: "E1", Ports: []board.PortDesc{{Name: "SATA1", Mode: "source",
		Drive: &board.DriveDesc{Path: p, Model: "Slow Disk", Serial: "SLOW1", ReadMBps: 4}}}}
	b, err := sim.New(desc, sim.Options{SpinUp: 20 * time.Millisecond, PlugRoots: []string{os.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	port, _ := b.Port("SATA1")
	port.PowerOn(context.Background())
	waitReady(t, port)
	var l logBuf
	r := open(t, port, fast(&l)) // 150 ms timeout; each 256 KiB read takes 65 ms, the 8th ends after 520 ms
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			if _, err := r.ReadAt(buf, int64(i)*int64(len(buf))); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("the reads took %v: the throttle did not queue them, the test proves nothing", took)
	}
	if l.String() != "" {
		t.Fatalf("a slow drive was taken for a frozen one:\n%s", l.String())
	}
}

// TestFreezeDriveBackAfterCycle: after the power cycle the port may report not-detected before the
// drive answers; the recovery waits past it (hal.WaitReady) for ReadyWait: a drive that answers
// then is read again, one that never does fails the read with hal.ErrGone once ReadyWait passed.
func TestFreezeDriveBackAfterCycle(t *testing.T) {
	for _, back := range []bool{true, false} {
		t.Run(map[bool]string{true: "back late", false: "never back"}[back], func(t *testing.T) {
			b, port, data := freezing(t, 1<<20, 10, 1000)
			same := filepath.Join(t.TempDir(), "same.img")
			if err := os.WriteFile(same, data, 0o444); err != nil {
				t.Fatal(err)
			}
			var l logBuf
			l.hook = func(msg string) {
				if !strings.Contains(msg, "power cycle 1") {
					return
				}
				if err := b.Unplug("SATA1"); err != nil { // the drive stops answering for good
					t.Error(err)
				}
				if !back {
					return
				}
				go func() { // and comes back once the port, powered again, has given up
					until := func(what string, ok func() bool) bool {
						for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(time.Millisecond) {
							if time.Now().After(deadline) {
								t.Errorf("port %s: %s, never %s", port.Name(), port.State(), what)
								return false
							}
						}
						return true
					}
					if !until("off", func() bool { return !port.Powered() }) ||
						!until("not-detected after the power on", func() bool { return port.Powered() && port.State() == hal.StateNotDetected }) {
						return
					}
					if err := b.Plug("SATA1", same, "Freezing Disk", "FRZ1"); err != nil {
						t.Error(err)
					}
				}()
			}
			cfg := fast(&l)
			cfg.OffTime = 300 * time.Millisecond // long enough for the goroutine to see the port off
			cfg.ReadyWait = time.Second
			r := open(t, port, cfg)
			buf := make([]byte, 8192)
			start := time.Now()
			n, err := r.ReadAt(buf, 0) // LBA 0-15: the frozen one is in
			switch {
			case back && (err != nil || n != len(buf) || !bytes.Equal(buf, data[:len(buf)])):
				t.Fatalf("drive back late: %d, %v\n%s", n, err, l.String())
			case !back && (!errors.Is(err, hal.ErrGone) || !strings.Contains(err.Error(), "did not come back within 1s")):
				t.Fatalf("drive never back: %v\n%s", err, l.String())
			case !back && time.Since(start) < cfg.ReadyWait:
				t.Fatalf("gave up after %v, before ReadyWait", time.Since(start))
			}
		})
	}
}
