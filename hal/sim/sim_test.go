package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
)

const spin = 50 * time.Millisecond

// image writes a file of n bytes where byte i is a function of i, so reads can be checked.
func image(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/512)
	}
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func newBoard(t *testing.T, ports ...board.PortDesc) *Board {
	t.Helper()
	b, err := New(board.Description{Kind: "sim", ApplianceID: "EVD0001", Ports: ports}, Options{SpinUp: spin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func waitState(t *testing.T, p hal.Port, want hal.PortState) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for p.State() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: state %s, want %s", p.Name(), p.State(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readyDrive(t *testing.T, p hal.Port) hal.Drive {
	t.Helper()
	if err := p.PowerOn(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitState(t, p, hal.StateReady)
	d := p.Drive()
	if d == nil {
		t.Fatal("ready port without drive")
	}
	return d
}

func TestNewErrors(t *testing.T) {
	img := image(t, 4096)
	cases := []struct {
		name string
		d    board.Description
		want string
	}{
		{"kind", board.Description{Kind: "linux", ApplianceID: "E", Ports: []board.PortDesc{{Name: "SATA1", Attach: "pci-0000:00:1f.2-ata-1"}}}, "kind"},
		{"invalid", board.Description{Kind: "sim", ApplianceID: "E", Ports: []board.PortDesc{{Name: "SATA99"}}}, "unknown port"},
		{"missing image", board.Description{Kind: "sim", ApplianceID: "E", Ports: []board.PortDesc{{Name: "SATA1", Drive: &board.DriveDesc{Path: img + ".nope", Model: "M", Serial: "S"}}}}, "no such file"},
		{"directory", board.Description{Kind: "sim", ApplianceID: "E", Ports: []board.PortDesc{{Name: "SATA1", Drive: &board.DriveDesc{Path: filepath.Dir(img), Model: "M", Serial: "S"}}}}, "not a regular file"},
		{"ragged", board.Description{Kind: "sim", ApplianceID: "E", Ports: []board.PortDesc{{Name: "SATA1", Drive: &board.DriveDesc{Path: image(t, 1000001), Model: "M", Serial: "S"}}}}, "1000001 bytes, not a whole number of 512-byte sectors"},
		{"ragged 4Kn", board.Description{Kind: "sim", ApplianceID: "E", Ports: []board.PortDesc{{Name: "SATA1", Drive: &board.DriveDesc{Path: image(t, 4608), Model: "M", Serial: "S", SectorSize: 4096}}}}, "4608 bytes, not a whole number of 4096-byte sectors"},
	}
	for _, c := range cases {
		if _, err := New(c.d, Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}

func TestPortStateMachine(t *testing.T) {
	img := image(t, 1<<20)
	b := newBoard(t,
		board.PortDesc{Name: "sata1", Mode: "source", Drive: &board.DriveDesc{Path: img, Model: "SanDisk SDSSDA120G", Serial: "171108456213", Firmware: "Z1"}},
		board.PortDesc{Name: "USB1"},
	)
	if b.ApplianceID() != "EVD0001" {
		t.Fatal(b.ApplianceID())
	}
	ps := b.Ports()
	if len(ps) != 2 || ps[0].Name() != "SATA1" || ps[1].Name() != "USB1" {
		t.Fatalf("ports %v", ps)
	}
	if _, ok := b.Port("SAS1"); ok {
		t.Fatal("port not in the description exists")
	}
	p, ok := b.Port("Sata1")
	if !ok {
		t.Fatal("SATA1 not found case-insensitively")
	}
	if p.Bus() != "sata" || p.Mode() != hal.ModeSource || p.Powered() || p.State() != hal.StateOff || p.Drive() != nil {
		t.Fatalf("initial: bus %s mode %s powered %v state %s", p.Bus(), p.Mode(), p.Powered(), p.State())
	}
	u, _ := b.Port("usb1")
	if u.Mode() != hal.ModeTarget {
		t.Fatalf("USB1 default mode %s", u.Mode())
	}

	start := time.Now()
	if err := p.PowerOn(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !p.Powered() || p.State() != hal.StateIdentifying || p.Drive() != nil {
		t.Fatalf("after PowerOn: %v %s", p.Powered(), p.State())
	}
	waitState(t, p, hal.StateReady)
	if el := time.Since(start); el < spin-5*time.Millisecond {
		t.Fatalf("identified after %v, spin-up is %v", el, spin)
	}
	id := p.Drive().Identity()
	want := hal.Identity{Model: "SanDisk SDSSDA120G", Serial: "171108456213", Firmware: "Z1", Size: 1 << 20, SectorSize: 512, Bus: "sata"}
	if id != want {
		t.Fatalf("identity %+v, want %+v", id, want)
	}
	if err := p.PowerOn(context.Background()); err != nil || p.State() != hal.StateReady {
		t.Fatalf("second PowerOn restarted identification: %v %s", err, p.State())
	}

	if err := u.PowerOn(context.Background()); err != nil {
		t.Fatal(err)
	}
	if u.State() != hal.StateIdentifying {
		t.Fatal(u.State())
	}
	waitState(t, u, hal.StateNotDetected)
	if u.Drive() != nil {
		t.Fatal("drive on empty port")
	}

	if err := p.SetMode(hal.ModeTarget); err != nil || p.Mode() != hal.ModeTarget {
		t.Fatalf("SetMode: %v %s", err, p.Mode())
	}
	if err := p.SetMode("sideways"); err == nil {
		t.Fatal("bad mode accepted")
	}

	old := p.Drive()
	if err := p.PowerOff(); err != nil {
		t.Fatal(err)
	}
	if p.Powered() || p.State() != hal.StateOff || p.Drive() != nil {
		t.Fatalf("after PowerOff: %v %s", p.Powered(), p.State())
	}
	if _, err := old.Open(); !errors.Is(err, hal.ErrGone) {
		t.Fatalf("Open of a powered-off drive: %v", err)
	}
	// Power off during identification: no late transition to ready.
	p.PowerOn(context.Background())
	p.PowerOff()
	time.Sleep(2 * spin)
	if p.State() != hal.StateOff {
		t.Fatalf("stale identification: %s", p.State())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.PowerOn(ctx); err == nil {
		t.Fatal("PowerOn with a cancelled context")
	}
}

func TestSpinUpPerDrive(t *testing.T) {
	img := image(t, 4096)
	b := newBoard(t, board.PortDesc{Name: "SAS1", Drive: &board.DriveDesc{Path: img, Model: "M", Serial: "S", SpinUpMs: 300}})
	p, _ := b.Port("SAS1")
	p.PowerOn(context.Background())
	time.Sleep(150 * time.Millisecond)
	if p.State() != hal.StateIdentifying {
		t.Fatalf("state %s before the drive's 300 ms spin-up", p.State())
	}
	waitState(t, p, hal.StateReady)
}

func TestReadAndBadSectors(t *testing.T) {
	img := image(t, 64*512)
	want, _ := os.ReadFile(img)
	b := newBoard(t, board.PortDesc{Name: "SATA2", Drive: &board.DriveDesc{Path: img, Model: "M", Serial: "S", BadSectors: []int64{20, 10, 10}}})
	p, _ := b.Port("SATA2")
	r, err := readyDrive(t, p).Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Size() != 64*512 || r.SectorSize() != 512 {
		t.Fatal(r.Size(), r.SectorSize())
	}

	buf := make([]byte, 4*512)
	n, err := r.ReadAt(buf, 0)
	if err != nil || n != len(buf) || !bytes.Equal(buf, want[:len(buf)]) {
		t.Fatalf("good read: n=%d err=%v", n, err)
	}

	cases := []struct {
		off, len int64
		n        int
		lba      int64
	}{
		{8 * 512, 4 * 512, 2 * 512, 10},        // bad sector in the middle: data before it
		{10 * 512, 512, 0, 10},                 // exactly the bad sector
		{10*512 + 100, 10, 0, 10},              // inside it
		{9*512 + 500, 100, 12, 10},             // straddles into it
		{11 * 512, 20 * 512, 9 * 512, 20},      // the next bad one
		{0, 64 * 512, 10 * 512, 10},            // whole disk: first bad
		{21 * 512, 10 * 512, 10 * 512, -1},     // past both: clean
		{11*512 + 1, 9*512 - 2, 9*512 - 2, -1}, // just between them
	}
	for _, c := range cases {
		buf := make([]byte, c.len)
		n, err := r.ReadAt(buf, c.off)
		if n != c.n {
			t.Errorf("ReadAt(off %d, len %d): n=%d, want %d", c.off, c.len, n, c.n)
		}
		if !bytes.Equal(buf[:n], want[c.off:c.off+int64(n)]) {
			t.Errorf("ReadAt(off %d): wrong data", c.off)
		}
		var me *hal.MediaError
		if c.lba < 0 {
			if err != nil {
				t.Errorf("ReadAt(off %d): %v", c.off, err)
			}
			continue
		}
		if !errors.As(err, &me) || me.LBA != c.lba || me.Count != 1 {
			t.Errorf("ReadAt(off %d, len %d): err %v, want MediaError at %d", c.off, c.len, err, c.lba)
		}
	}

	// End of drive.
	n, err = r.ReadAt(make([]byte, 1024), 64*512-512)
	if n != 512 || err != io.EOF {
		t.Fatalf("read across the end: %d %v", n, err)
	}
	if n, err := r.ReadAt(make([]byte, 1), 64*512); n != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d %v", n, err)
	}
	if _, err := r.ReadAt(make([]byte, 1), -1); err == nil {
		t.Fatal("negative offset accepted")
	}
	r.Close()
	if _, err := r.ReadAt(buf, 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

// The reader must not be able to change the image: no write method, O_RDONLY, and the file's
// bytes and mtime are the same after reading everything.
func TestWriteBlocked(t *testing.T) {
	img := image(t, 1<<20)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(img, old, old); err != nil {
		t.Fatal(err)
	}
	sum := func() [32]byte {
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	before := sum()
	b := newBoard(t, board.PortDesc{Name: "SATA1", Drive: &board.DriveDesc{Path: img, Model: "M", Serial: "S"}})
	p, _ := b.Port("SATA1")
	r, err := readyDrive(t, p).Open()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.(io.WriterAt); ok {
		t.Fatal("Reader is an io.WriterAt")
	}
	if _, ok := r.(io.Writer); ok {
		t.Fatal("Reader is an io.Writer")
	}
	if _, err := r.(*Reader).f.WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("the image is open for writing")
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, r.Size())); err != nil {
		t.Fatal(err)
	}
	r.Close()
	b.Close()
	if sum() != before {
		t.Fatal("image bytes changed")
	}
	if [32]byte(h.Sum(nil)) != before {
		t.Fatal("read data differs from the image")
	}
	fi, _ := os.Stat(img)
	if !fi.ModTime().Equal(old) {
		t.Fatalf("mtime changed: %v -> %v", old, fi.ModTime())
	}
}

func TestThrottle(t *testing.T) {
	img := image(t, 4<<20)
	b := newBoard(t, board.PortDesc{Name: "SATA1", Drive: &board.DriveDesc{Path: img, Model: "M", Serial: "S", ReadMBps: 10}})
	p, _ := b.Port("SATA1")
	r, err := readyDrive(t, p).Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	buf := make([]byte, 64<<10)
	total := 0
	for off := int64(0); off < 3e6; off += int64(len(buf)) {
		n, err := r.ReadAt(buf, off)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	el := time.Since(start)
	rate := float64(total) / el.Seconds() / 1e6
	// 10 MB/s: 3 MB take ~0.3 s. Generous bounds for a shared machine, tight enough to catch
	// a missing or wildly wrong throttle.
	if rate > 12 || rate < 5 {
		t.Fatalf("read %d bytes in %v = %.1f MB/s, want ~10", total, el, rate)
	}
}

func TestUnplugWakesThrottledRead(t *testing.T) {
	img := image(t, 8<<20)
	b := newBoard(t, board.PortDesc{Name: "SATA1", Drive: &board.DriveDesc{Path: img, Model: "M", Serial: "S", ReadMBps: 1}})
	p, _ := b.Port("SATA1")
	d := readyDrive(t, p)
	r, err := d.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	done := make(chan error, 1)
	go func() {
		_, err := r.ReadAt(make([]byte, 8<<20), 0) // 8 s at 1 MB/s
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := b.Unplug("sata1"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, hal.ErrGone) {
			t.Fatalf("blocked read returned %v, want ErrGone", err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("took %v", el)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("blocked read not woken by unplug within 2 s")
	}
	if _, err := r.ReadAt(make([]byte, 512), 0); !errors.Is(err, hal.ErrGone) {
		t.Fatalf("read after unplug: %v", err)
	}
	if _, err := d.Health(context.Background()); !errors.Is(err, hal.ErrGone) {
		t.Fatalf("health after unplug: %v", err)
	}
	if p.State() != hal.StateNotDetected || p.Drive() != nil {
		t.Fatalf("after unplug: %s", p.State())
	}
}

func TestPowerOffFailsReaders(t *testing.T) {
	img := image(t, 4096)
	b := newBoard(t, board.PortDesc{Name: "SATA1", Drive: &board.DriveDesc{Path: img, Model: "M", Serial: "S"}})
	p, _ := b.Port("SATA1")
	r, err := readyDrive(t, p).Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p.PowerOff()
	if _, err := r.ReadAt(make([]byte, 512), 0); !errors.Is(err, hal.ErrGone) {
		t.Fatalf("read after power-off: %v", err)
	}
	// Power back on: a new Drive, readable again; the old Reader stays gone.
	r2, err := readyDrive(t, p).Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, err := r2.ReadAt(make([]byte, 512), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadAt(make([]byte, 512), 0); !errors.Is(err, hal.ErrGone) {
		t.Fatalf("old reader revived: %v", err)
	}
}

func TestPlugUnplugAndEvents(t *testing.T) {
	img := image(t, 8192)
	b, err := New(board.Description{Kind: "sim", ApplianceID: "EVD0001", Ports: []board.PortDesc{{Name: "SATA1"}, {Name: "USB1"}}},
		Options{SpinUp: spin, PlugRoots: []string{filepath.Dir(img)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	sub := filepath.Join(filepath.Dir(img), "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	ragged := filepath.Join(filepath.Dir(img), "ragged.img")
	if err := os.WriteFile(ragged, make([]byte, 8193), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s1, s2 := b.Subscribe(ctx), b.Subscribe(ctx)
	slow := b.Subscribe(ctx) // never read: must not block the board

	p, _ := b.Port("SATA1")
	p.PowerOn(context.Background())
	waitState(t, p, hal.StateNotDetected)

	errCases := []struct {
		name                      string
		port, path, model, serial string
		want                      string
	}{
		{"unknown port", "SATA9", img, "M", "S", "unknown port"},
		{"relative path", "SATA1", "disk.img", "M", "S", "not absolute"},
		{"missing file", "SATA1", img + ".x", "M", "S", "no such file"},
		{"directory", "SATA1", sub, "M", "S", "not a regular file"},
		{"serial with space", "SATA1", img, "M", "S 1", "serial"},
		{"no model", "SATA1", img, "", "S", "model"},
		{"ragged tail", "SATA1", ragged, "M", "S", "8193 bytes, not a whole number of 512-byte sectors"},
	}
	for _, c := range errCases {
		if err := b.Plug(c.port, c.path, c.model, c.serial); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Plug %s: %v, want %q", c.name, err, c.want)
		}
	}
	if err := b.Unplug("SATA1"); err == nil || !strings.Contains(err.Error(), "no drive") {
		t.Errorf("Unplug of an empty port: %v", err)
	}
	if err := b.Unplug("NVME1"); err == nil || !strings.Contains(err.Error(), "unknown port") {
		t.Errorf("Unplug of an unknown port: %v", err)
	}

	if err := b.Plug("sata1", img, "Samsung SSD 840 PRO Series", "S1AXNSAF106001H"); err != nil {
		t.Fatal(err)
	}
	if p.State() != hal.StateIdentifying {
		t.Fatalf("after plug on a powered port: %s", p.State())
	}
	if err := b.Plug("SATA1", img, "M", "S"); err == nil || !strings.Contains(err.Error(), "already has a drive") {
		t.Errorf("double plug: %v", err)
	}
	waitState(t, p, hal.StateReady)
	if id := p.Drive().Identity(); id.Model != "Samsung SSD 840 PRO Series" || id.Size != 8192 {
		t.Fatalf("%+v", id)
	}
	// Plug on an unpowered port: event, but the port stays off until powered.
	if err := b.Plug("USB1", img, "M", "S"); err != nil {
		t.Fatal(err)
	}
	if u, _ := b.Port("USB1"); u.State() != hal.StateOff {
		t.Fatalf("unpowered port after plug: %s", u.State())
	}
	if err := b.Unplug("SATA1"); err != nil {
		t.Fatal(err)
	}
	// Overflow the slow subscriber: the board must keep going.
	for range hal.SubscriberBuffer + 10 {
		if err := b.Unplug("USB1"); err != nil {
			t.Fatal(err)
		}
		if err := b.Plug("USB1", img, "M", "S"); err != nil {
			t.Fatal(err)
		}
	}

	want := []hal.Event{{Port: "SATA1", Kind: hal.Plugged}, {Port: "USB1", Kind: hal.Plugged}, {Port: "SATA1", Kind: hal.Unplugged}}
	for i, s := range []<-chan hal.Event{s1, s2} {
		for j, w := range want {
			select {
			case ev := <-s:
				if ev.Port != w.Port || ev.Kind != w.Kind || ev.Time.IsZero() {
					t.Fatalf("subscriber %d event %d: %+v, want %+v", i, j, ev, w)
				}
			case <-time.After(time.Second):
				t.Fatalf("subscriber %d: event %d missing", i, j)
			}
		}
	}
	if n := len(slow); n != hal.SubscriberBuffer {
		t.Fatalf("slow subscriber holds %d events, want a full buffer of %d", n, hal.SubscriberBuffer)
	}

	// Cancelling the context closes the channel (after draining what is buffered).
	cancel()
	deadline := time.After(2 * time.Second)
	for {
		select {
		case _, ok := <-s1:
			if !ok {
				goto closed
			}
		case <-deadline:
			t.Fatal("subscription not closed after cancel")
		}
	}
closed:
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-b.Subscribe(context.Background()); ok {
		t.Fatal("Subscribe on a closed board delivered an event")
	}
}

func TestHealth(t *testing.T) {
	img := image(t, 8192)
	temp, passed := 55, false
	b := newBoard(t,
		board.PortDesc{Name: "SATA1", Drive: &board.DriveDesc{Path: img, Model: "M", Serial: "S1"}},
		board.PortDesc{Name: "SATA2", Drive: &board.DriveDesc{Path: img, Model: "M", Serial: "S2", BadSectors: []int64{3, 5}}},
		board.PortDesc{Name: "SATA3", Drive: &board.DriveDesc{Path: img, Model: "M", Serial: "S3", SMART: &board.SMART{Temperature: &temp, Passed: &passed}}},
	)
	get := func(name string) hal.Health {
		p, _ := b.Port(name)
		h, err := readyDrive(t, p).Health(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	h1 := get("SATA1")
	if !h1.Supported || !h1.Passed || h1.PendingSectors != 0 || h1.TemperatureC == 0 || h1.PowerOnHours == 0 || h1.Attributes["197 Current_Pending_Sector"] != "0" {
		t.Fatalf("healthy defaults: %+v", h1)
	}
	if h2 := get("SATA2"); h2.PendingSectors != 2 || h2.Attributes["197 Current_Pending_Sector"] != "2" {
		t.Fatalf("bad sectors not pending: %+v", h2)
	}
	if h3 := get("SATA3"); h3.Passed || h3.TemperatureC != 55 {
		t.Fatalf("description values ignored: %+v", h3)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p, _ := b.Port("SATA1")
	if _, err := p.Drive().Health(ctx); err == nil {
		t.Fatal("Health with a cancelled context")
	}
}
