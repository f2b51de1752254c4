package sim

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/mbr"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/internal/testenv"
)

func fileSum(t *testing.T, p string) ([32]byte, time.Time) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b), fi.ModTime()
}

func TestDemo(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	desc, err := DemoDescription(dir, "EVD0001")
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("generation took %v", el)
	}
	t.Logf("generated in %v", time.Since(start))
	if len(desc.Ports) != 18 || desc.Kind != "sim" || desc.ApplianceID != "EVD0001" {
		t.Fatalf("%+v", desc)
	}
	for i, name := range board.TaskForcePorts() {
		if desc.Ports[i].Name != name || desc.Ports[i].Mode != string(board.DefaultMode(name)) {
			t.Fatalf("port %d: %+v", i, desc.Ports[i])
		}
	}
	d1, d2 := desc.Ports[0].Drive, desc.Ports[1].Drive
	if d1 == nil || d2 == nil || d1.Model != "SanDisk SDSSDA120G" || d1.Serial != "171108456213" || d2.Model != "Samsung SSD 840 PRO Series" || len(d2.BadSectors) == 0 {
		t.Fatalf("demo drives %+v %+v", d1, d2)
	}
	// SleuthKit, the independent reader, must see both FAT volumes as FAT32 (a FAT32 with too few
	// clusters reads as FAT16 or not at all).
	for _, img := range []string{d1.Path, d2.Path} {
		out, err := exec.Command(testenv.Tool(t, "fsstat"), "-o", strconv.Itoa(partStart), img).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "File System Type: FAT32") {
			t.Errorf("fsstat %s: %v\n%.400s", img, err, out)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, DemoDir))
	if len(entries) != 2 {
		t.Fatalf("demo dir holds %d entries (temp files left?)", len(entries))
	}
	sum1, mt1 := fileSum(t, d1.Path)
	sum2, mt2 := fileSum(t, d2.Path)

	// Second start: same files, not regenerated.
	desc2, err := DemoDescription(dir, "EVD0001")
	if err != nil {
		t.Fatal(err)
	}
	if s, m := fileSum(t, desc2.Ports[0].Drive.Path); s != sum1 || !m.Equal(mt1) {
		t.Fatal("drive 1 regenerated")
	}
	if s, m := fileSum(t, desc2.Ports[1].Drive.Path); s != sum2 || !m.Equal(mt2) {
		t.Fatal("drive 2 regenerated")
	}

	// The file systems read back (read-only) with the files the generator wrote.
	for _, c := range []struct {
		path  string
		parts int
		files map[int][]string
	}{
		{d1.Path, 2, map[int][]string{1: DemoFiles(), 2: {"etc/hostname", "home/alice/Documents/notes.txt", "var/log/syslog"}}},
		{d2.Path, 1, map[int][]string{1: {"DCIM/100CANON/IMG_4701.JPG", "DCIM/101CANON/MVI_4800.MOV", "MISC/AUTPRINT.MRK"}}},
	} {
		d, err := diskfs.Open(c.path, diskfs.WithOpenMode(diskfs.ReadOnly))
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := d.GetPartitionTable()
		if err != nil {
			t.Fatal(err)
		}
		m, ok := tbl.(*mbr.Table)
		if !ok {
			t.Fatalf("%s: partition table %T", c.path, tbl)
		}
		used := 0
		for _, p := range m.Partitions {
			if p.Size > 0 {
				used++
			}
		}
		if used != c.parts {
			t.Fatalf("%s: %d partitions, want %d", c.path, used, c.parts)
		}
		for part, files := range c.files {
			fsys, err := d.GetFilesystem(part)
			if err != nil {
				t.Fatalf("%s part %d: %v", c.path, part, err)
			}
			for _, f := range files {
				p := f
				if part == 1 {
					p = "/" + f // FAT wants rooted paths, ext4 relative ones
				}
				b, err := fsys.ReadFile(p)
				if err != nil || len(b) == 0 {
					t.Errorf("%s part %d: %s: %d bytes, %v", c.path, part, f, len(b), err)
				}
			}
		}
		d.Close()
	}
	if len(DemoFiles()) < 15 {
		t.Fatalf("only %d demo files", len(DemoFiles()))
	}

	// Independent check of the ext4 file system when e2fsprogs is installed.
	if e2fsck, err := exec.LookPath("e2fsck"); err == nil {
		f, _ := os.Open(d1.Path)
		out, _ := os.Create(filepath.Join(t.TempDir(), "p2.img"))
		io.Copy(out, io.NewSectionReader(f, (partStart+d1FatSectors)*512, demo1Size-(partStart+d1FatSectors)*512))
		f.Close()
		out.Close()
		if b, err := exec.Command(e2fsck, "-fn", out.Name()).CombinedOutput(); err != nil {
			t.Errorf("e2fsck: %v\n%s", err, b)
		}
	}
	if fsck, err := exec.LookPath("fsck.vfat"); err == nil {
		f, _ := os.Open(d2.Path)
		out, _ := os.Create(filepath.Join(t.TempDir(), "p1.img"))
		io.Copy(out, io.NewSectionReader(f, partStart*512, d2FatSectors*512))
		f.Close()
		out.Close()
		// Informational only: go-diskfs v1.9.4 writes '..' of top-level folders pointing at the
		// root cluster instead of 0 and leaves the FSInfo free count unset; fsck.vfat complains,
		// Linux and go-diskfs read the volume fine.
		if b, err := exec.Command(fsck, "-n", out.Name()).CombinedOutput(); err != nil {
			t.Logf("fsck.vfat (known go-diskfs quirks): %v\n%s", err, b)
		}
	}

	// Boot the demo board, read every byte of SATA2 through the HAL: bad sectors at the listed
	// LBAs, SMART warning, and the image unchanged afterwards.
	desc.Ports[1].Drive.ReadMBps = 0 // keep the test fast
	b, err := New(desc, Options{SpinUp: spin})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, _ := b.Port("SATA2")
	drv := readyDrive(t, p)
	h, err := drv.Health(context.Background())
	if err != nil || !h.Supported || h.PendingSectors != len(DemoBadSectors) || h.Reallocated == 0 {
		t.Fatalf("demo health %+v %v", h, err)
	}
	r, err := drv.Open()
	if err != nil {
		t.Fatal(err)
	}
	var bad []int64
	buf := make([]byte, 1<<20)
	for off := int64(0); off < r.Size(); {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), r.Size()-off)], off)
		off += int64(n)
		var me *hal.MediaError
		switch {
		case errors.As(err, &me):
			bad = append(bad, me.LBA)
			off = (me.LBA + me.Count) * 512
		case err != nil && !errors.Is(err, io.EOF):
			t.Fatal(err)
		}
	}
	r.Close()
	if len(bad) != len(DemoBadSectors) || bad[0] != DemoBadSectors[0] || bad[len(bad)-1] != DemoBadSectors[len(DemoBadSectors)-1] {
		t.Fatalf("bad sectors found %v, want %v", bad, DemoBadSectors)
	}
	if s, m := fileSum(t, d2.Path); s != sum2 || !m.Equal(mt2) {
		t.Fatal("reading changed the image")
	}
}
