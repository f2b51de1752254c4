package linux

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/internal/directio"
)

// Tests on real loop devices and real kernel uevents. They need root and loop devices; without
// them they skip, unless EVIDENCED_REQUIRE_TOOLS is set (make test), where they fail.

func needLoop(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not root"
	} else if _, err := exec.LookPath("losetup"); err != nil {
		why = "no losetup"
	} else if _, err := os.Stat("/dev/loop-control"); err != nil {
		why = "no /dev/loop-control"
	}
	if why == "" {
		return
	}
	if os.Getenv("EVIDENCED_REQUIRE_TOOLS") != "" {
		t.Fatalf("loop device tests: %s", why)
	}
	t.Skipf("loop device tests: %s", why)
}

// freeLoop asks the kernel for a free loop device number (creating one if needed).
func freeLoop(t *testing.T) int {
	t.Helper()
	f, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := unix.IoctlRetInt(int(f.Fd()), unix.LOOP_CTL_GET_FREE)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func losetup(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("losetup", args...).CombinedOutput(); err != nil {
		t.Fatalf("losetup %v: %v: %s", args, err, out)
	}
}

// image writes a file of random data and returns its path and MD5.
func image(t *testing.T, size int) (string, [16]byte) {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	p := filepath.Join(t.TempDir(), "evidence-disk.img")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, md5.Sum(b)
}

func fileMD5(t *testing.T, p string) [16]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return md5.Sum(b)
}

func loopBoard(t *testing.T, ports ...board.PortDesc) *Board {
	t.Helper()
	desc := board.Description{Kind: board.KindLinux, ApplianceID: "EVDTEST", Ports: ports}
	b, err := New(desc, Options{Source: "kernel"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func waitEvent(t *testing.T, ch <-chan hal.Event, port string, kind hal.EventKind, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	tm := time.NewTimer(within)
	defer tm.Stop()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("event channel closed waiting for %s %s", port, kind)
			}
			if ev.Port == port && ev.Kind == kind {
				return time.Since(start)
			}
		case <-tm.C:
			t.Fatalf("no %s event on %s within %v", kind, port, within)
		}
	}
}

// attach binds the image to loop n, retrying on another engineer's test grabbing it first is not
// possible (the port names n), so a busy device fails the test clearly.
func attach(t *testing.T, n int, img string, extra ...string) {
	t.Helper()
	losetup(t, append(extra, fmt.Sprintf("/dev/loop%d", n), img)...)
	t.Cleanup(func() {
		dev := fmt.Sprintf("/dev/loop%d", n)
		exec.Command("losetup", "-d", dev).Run()
		// The read-only flag outlives the attachment: leave the device as others expect it.
		exec.Command("blockdev", "--setrw", dev).Run()
	})
}

// loopDrive is a board with one port on a free loop device, and the image attached to it.
type loopDrive struct {
	b   *Board
	ev  <-chan hal.Event
	dev string // /dev/loopN
	img string
	sum [16]byte // of the image as attached

	plugged time.Duration // from losetup to the plugged event
}

// plugLoop starts a board whose port (in mode) is a free loop device, attaches a random image of
// size bytes to it (partitioned by the sfdisk script, if any) and waits for the plugged event.
func plugLoop(t *testing.T, port, mode string, size int, table string) loopDrive {
	t.Helper()
	img, sum := image(t, size)
	var extra []string
	if table != "" {
		if _, err := exec.LookPath("sfdisk"); err != nil {
			t.Skip("no sfdisk")
		}
		sf := exec.Command("sfdisk", "-q", img)
		sf.Stdin = strings.NewReader(table)
		if out, err := sf.CombinedOutput(); err != nil {
			t.Fatalf("sfdisk: %v %s", err, out)
		}
		sum = fileMD5(t, img)
		extra = []string{"-P"}
	}
	l := plugFile(t, port, mode, img, extra...)
	l.sum = sum
	if table != "" {
		addPartitions(t, l.dev)
	}
	return l
}

// plugFile starts a board whose port (in mode) is a free loop device, attaches img to it with
// losetup's extra options and waits for the plugged event. The image's sum is left to the caller.
func plugFile(t *testing.T, port, mode, img string, extra ...string) loopDrive {
	t.Helper()
	n := freeLoop(t)
	l := loopDrive{b: loopBoard(t, board.PortDesc{Name: port, Attach: fmt.Sprintf("loop-%d", n), Mode: mode}), dev: fmt.Sprintf("/dev/loop%d", n), img: img}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l.ev = l.b.Subscribe(ctx)
	start := time.Now()
	attach(t, n, img, extra...)
	waitEvent(t, l.ev, port, hal.Plugged, 5*time.Second)
	l.plugged = time.Since(start)
	return l
}

// readUntilError reads the drive over and over until a read fails, and sends that error.
func readUntilError(r hal.Reader) <-chan error {
	failed := make(chan error, 1)
	go func() {
		buf := directio.Buffer(64 << 10)
		for off := int64(0); ; off = (off + int64(len(buf))) % r.Size() {
			if _, err := r.ReadAt(buf, off); err != nil {
				failed <- err
				return
			}
		}
	}()
	return failed
}

// TestLoopSourceDrive: a drive attached to a source port is plugged (a real kernel uevent),
// identified, write-blocked in the kernel before we open it (a write through another descriptor
// fails with EPERM/EROFS), read back exactly through O_DIRECT at aligned and unaligned offsets, left
// unchanged, and unplugged when detached.
func TestLoopSourceDrive(t *testing.T) {
	needLoop(t)
	l := plugLoop(t, "SATA1", "source", 8<<20, "")
	t.Logf("losetup to plugged: %v", l.plugged)
	b, ev, img, sum := l.b, l.ev, l.img, l.sum
	p, _ := b.Port("SATA1")
	if p.State() != hal.StateReady {
		t.Fatalf("state %s", p.State())
	}
	id := p.Drive().Identity()
	if id.Model != "Linux loop" || id.Serial != "evidence-disk.img" || id.Size != 8<<20 || id.SectorSize != 512 || id.Bus != "sata" {
		t.Fatalf("identity %+v", id)
	}
	dev := l.dev
	assertWriteBlocked(t, dev)

	r, err := p.Drive().Open()
	if err != nil {
		t.Fatal(err)
	}
	h := md5.New()
	buf := directio.Buffer(1 << 20)
	for off := int64(0); off < r.Size(); off += int64(len(buf)) {
		n, err := r.ReadAt(buf, off)
		if err != nil && !(errors.Is(err, io.EOF) && off+int64(n) == r.Size()) {
			t.Fatal(err)
		}
		h.Write(buf[:n])
	}
	if !bytes.Equal(h.Sum(nil), sum[:]) {
		t.Fatal("drive content read through the Reader differs from the image")
	}
	// Unaligned offset and length, unaligned buffer: through the bounce buffer.
	raw, _ := os.ReadFile(img)
	odd := make([]byte, 70001)[1:]
	if n, err := r.ReadAt(odd, 1234567); err != nil || n != len(odd) || !bytes.Equal(odd, raw[1234567:1234567+len(odd)]) {
		t.Fatalf("unaligned read: n=%d err=%v equal=%v", n, err, bytes.Equal(odd, raw[1234567:1234567+len(odd)]))
	}
	if n, err := r.ReadAt(make([]byte, 4096), r.Size()-100); n != 100 || !errors.Is(err, io.EOF) {
		t.Fatalf("read across the end: n=%d err=%v", n, err)
	}
	r.Close()
	if fileMD5(t, img) != sum {
		t.Fatal("the evidence image changed")
	}
	losetup(t, "-d", dev)
	waitEvent(t, ev, "SATA1", hal.Unplugged, 5*time.Second)
	if p.Drive() != nil || p.State() != hal.StateNotDetected {
		t.Fatalf("after detach: drive %v state %s", p.Drive(), p.State())
	}
}

// assertWriteBlocked checks the kernel's read-only flag independently (BLKROGET on a fresh
// descriptor) and that a write through a descriptor opened for writing fails.
func assertWriteBlocked(t *testing.T, dev string) {
	t.Helper()
	f, err := os.OpenFile(dev, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKROGET)
	f.Close()
	if err != nil || ro != 1 {
		t.Fatalf("%s: BLKROGET = %d, %v; want 1", dev, ro, err)
	}
	w, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err == nil {
		_, err = w.WriteAt(make([]byte, 512), 0)
		if err == nil {
			err = w.Sync()
		}
		w.Close()
	}
	if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EROFS) && !errors.Is(err, unix.EACCES) {
		t.Fatalf("%s: write through another descriptor: err = %v, want EPERM/EROFS", dev, err)
	}
}

// TestLoopTargetToSource: a target port's drive is writable; switching the port to source
// write-blocks it (and its partitions) at once; back to target lifts it.
func TestLoopTargetToSource(t *testing.T) {
	needLoop(t)
	l := plugLoop(t, "USB1", "target", 8<<20, "label: dos\n,2M\n,\n")
	b, dev := l.b, l.dev
	waitFor(t, func() bool { _, err := os.Stat(dev + "p2"); return err == nil })
	w, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("target"), 1<<20); err != nil {
		t.Fatalf("target drive not writable: %v", err)
	}
	w.Close()
	p, _ := b.Port("USB1")
	if err := p.SetMode(hal.ModeSource); err != nil {
		t.Fatal(err)
	}
	assertWriteBlocked(t, dev)
	assertWriteBlocked(t, dev+"p1")
	assertWriteBlocked(t, dev+"p2")
	if err := p.SetMode(hal.ModeTarget); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(dev)
	ro, _ := unix.IoctlGetInt(int(f.Fd()), unix.BLKROGET)
	f.Close()
	if ro != 0 {
		t.Fatal("back to target: still read-only")
	}
}

// TestLoopPartitionsBlockedOnAppearance: partitions that appear on a source drive are
// write-blocked as their uevent arrives.
func TestLoopPartitionsBlockedOnAppearance(t *testing.T) {
	needLoop(t)
	l := plugLoop(t, "SATA2", "source", 8<<20, "label: gpt\n,2M\n,\n")
	dev, img, sum := l.dev, l.img, l.sum
	for _, part := range []string{dev + "p1", dev + "p2"} {
		waitFor(t, func() bool {
			f, err := os.Open(part)
			if err != nil {
				return false
			}
			defer f.Close()
			ro, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKROGET)
			return err == nil && ro == 1
		})
		assertWriteBlocked(t, part)
	}
	assertWriteBlocked(t, dev)
	if fileMD5(t, img) != sum {
		t.Fatal("the evidence image changed")
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatal("condition not met within 5 s")
}

// addPartitions asks the kernel to add the partitions it has not added by itself (losetup -P's
// scan does not always run here); the kernel then sends their add uevents.
func addPartitions(t *testing.T, dev string) {
	t.Helper()
	if _, err := os.Stat(dev + "p1"); err == nil {
		return
	}
	if out, err := exec.Command("partx", "-a", dev).CombinedOutput(); err != nil {
		t.Fatalf("partx -a %s: %v %s", dev, err, out)
	}
}

// TestLoopGoneMidRead: the kernel announces the drive's removal (a remove uevent, synthesized
// through the device's uevent file: a loop device held open cannot really vanish) while a reader
// is reading: reads fail with hal.ErrGone within 2 s and the port reports unplugged.
func TestLoopGoneMidRead(t *testing.T) {
	needLoop(t)
	l := plugLoop(t, "SATA3", "source", 16<<20, "")
	b, ev := l.b, l.ev
	p, _ := b.Port("SATA3")
	r, err := p.Drive().Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	failed := readUntilError(r)
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := os.WriteFile("/sys/block/"+filepath.Base(l.dev)+"/uevent", []byte("remove"), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		took := time.Since(start)
		t.Logf("removal to ErrGone: %v", took)
		if !errors.Is(err, hal.ErrGone) || !strings.Contains(err.Error(), "SATA3") {
			t.Fatalf("read error %v, want hal.ErrGone naming the port", err)
		}
		if took > 2*time.Second {
			t.Fatalf("ErrGone after %v, want within 2 s", took)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("reads still succeed 2 s after the drive was removed")
	}
	waitEvent(t, ev, "SATA3", hal.Unplugged, time.Second)
	if p.Drive() != nil {
		t.Fatal("port still has a drive after its removal")
	}
}

// TestLoopShrinksMidRead: the device's capacity drops under a reader, as when the kernel deletes a
// disk (del_gendisk sets the capacity to 0 before the remove uevent goes out), so reads inside the
// identified size return no bytes. Capacity 0 is the drive leaving: hal.ErrGone, never io.EOF, which
// an imager would take for the end of the evidence (the old reader did exactly that). A smaller
// non-zero capacity is either io.ErrUnexpectedEOF (the read saw it first) or hal.ErrGone (the change
// uevent came first: a drive of another size is not the drive identified), again never a clean end.
func TestLoopShrinksMidRead(t *testing.T) {
	needLoop(t)
	for _, tc := range []struct {
		name string
		size int64
		want []error
		gone bool
	}{
		{name: "to nothing", size: 0, want: []error{hal.ErrGone}, gone: true},
		{name: "to half", size: 8 << 20, want: []error{io.ErrUnexpectedEOF, hal.ErrGone}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := plugLoop(t, "SATA3", "source", 16<<20, "")
			p, _ := l.b.Port("SATA3")
			r, err := p.Drive().Open()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			failed := readUntilError(r)
			time.Sleep(100 * time.Millisecond)
			setLoopSize(t, l.dev, tc.size)
			select {
			case err := <-failed:
				t.Logf("read error after the shrink: %v", err)
				if !slices.ContainsFunc(tc.want, func(w error) bool { return errors.Is(err, w) }) || errors.Is(err, io.EOF) {
					t.Fatalf("read error %v, want %v", err, tc.want)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("reads still succeed 2 s after the device shrank")
			}
			if tc.gone {
				waitEvent(t, l.ev, "SATA3", hal.Unplugged, time.Second)
			}
		})
	}
}

// setLoopSize changes a bound loop device's capacity the way the kernel changes a disk's: at once,
// under its readers (LOOP_SET_STATUS64 with a new offset or size limit; truncating the backing file
// instead would fail reads with EIO before the capacity changed). Size 0 moves the offset to the
// backing file's end.
func setLoopSize(t *testing.T, dev string, size int64) {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := unix.IoctlLoopGetStatus64(int(f.Fd()))
	if err != nil {
		t.Fatalf("LOOP_GET_STATUS64 %s: %v", dev, err)
	}
	if size == 0 {
		fi, err := os.Stat(loopBacking(t, dev))
		if err != nil {
			t.Fatal(err)
		}
		st.Offset = uint64(fi.Size())
	} else {
		st.Sizelimit = uint64(size)
	}
	for try := 0; ; try++ {
		err = unix.IoctlLoopSetStatus64(int(f.Fd()), st)
		if err != unix.EAGAIN || try == 50 {
			break
		}
		time.Sleep(10 * time.Millisecond) // the kernel could not drop the page cache yet
	}
	if err != nil {
		t.Fatalf("LOOP_SET_STATUS64 %s: %v", dev, err)
	}
}

// loopBacking is the backing file of a bound loop device.
func loopBacking(t *testing.T, dev string) string {
	t.Helper()
	b, err := os.ReadFile("/sys/block/" + filepath.Base(dev) + "/loop/backing_file")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestLoopEventStormLeaksNothing: 1,000 change uevents about a plugged drive neither re-plug it
// nor leak goroutines or file descriptors; closing the board ends every goroutine it started.
func TestLoopEventStormLeaksNothing(t *testing.T) {
	needLoop(t)
	goroutines0 := runtime.NumGoroutine()
	n := freeLoop(t)
	desc := board.Description{Kind: board.KindLinux, ApplianceID: "EVDTEST", Ports: []board.PortDesc{{Name: "SATA4", Attach: fmt.Sprintf("loop-%d", n), Mode: "source"}}}
	b, err := New(desc, Options{Source: "kernel"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := b.Subscribe(ctx)
	img, sum := image(t, 4<<20)
	attach(t, n, img)
	waitEvent(t, ev, "SATA4", hal.Plugged, 5*time.Second)
	p, _ := b.Port("SATA4")
	drive := p.Drive()
	fds0, g0 := openFDs(t), runtime.NumGoroutine()
	uev := fmt.Sprintf("/sys/block/loop%d/uevent", n)
	for i := 0; i < 1000; i++ {
		if err := os.WriteFile(uev, []byte("change"), 0); err != nil {
			t.Fatal(err)
		}
	}
	// An event after the storm: when it is seen, the storm has been handled.
	losetup(t, "-d", fmt.Sprintf("/dev/loop%d", n))
	deadline := time.After(30 * time.Second)
	for done := false; !done; {
		select {
		case e := <-ev:
			if e.Kind == hal.Plugged {
				t.Fatal("a change event re-plugged the same drive")
			}
			done = e.Kind == hal.Unplugged
		case <-deadline:
			t.Fatal("the storm was not handled within 30 s")
		}
	}
	if p.Drive() != nil || !drive.(*Drive).isGone() {
		t.Fatal("the drive is not gone after detach")
	}
	// Events that follow the detach may still be handled (a sysfs file open for a moment): a
	// leak is what stays.
	fds := openFDs(t)
	for deadline := time.Now().Add(5 * time.Second); fds != fds0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		fds = openFDs(t)
	}
	if fds != fds0 {
		t.Errorf("open descriptors before the storm:\n%s\nafter:\n%s", fds0, fds)
	}
	g := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); g > g0 && time.Now().Before(deadline); g = runtime.NumGoroutine() {
		time.Sleep(100 * time.Millisecond)
	}
	if g > g0 {
		t.Errorf("goroutines %d before the storm, %d after", g0, g)
	}
	if fileMD5(t, img) != sum {
		t.Fatal("the evidence image changed")
	}
	cancel()
	b.Close()
	waitFor(t, func() bool { return runtime.NumGoroutine() <= goroutines0 })
}

// openFDs lists this process's descriptors and what they are, after a GC (go-udev frees its
// monitors in finalizers; a board closed by an earlier test may still hold one until then).
func openFDs(t *testing.T) string {
	t.Helper()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		out = append(out, e.Name()+"->"+target)
	}
	return strings.Join(out, " ")
}
