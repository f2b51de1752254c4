package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/partition/mbr"

	"github.com/evidenced/evidenced/hal/board"
)

// Demo drive files and identities. They are fixed so that scripts and docs can name the demo
// drives (`SATA1 SanDisk SDSSDA120G 171108456213`).
const (
	DemoDir = "demo-drives" // below dataDir

	demo1File   = "sata1-sandisk.img"
	demo1Model  = "SanDisk SDSSDA120G"
	demo1Serial = "171108456213"
	demo1Size   = 64 << 20

	demo2File = "sata2-samsung-fat32.img" // the first layout's FAT32 had too few clusters to be FAT32

	demo2Model  = "Samsung SSD 840 PRO Series"
	demo2Serial = "S1AXNSAF106001H"
	demo2Size   = 48 << 20
)

// Layout of the demo drives (512-byte sectors). Exported through DemoBadSectors so tests and
// diagnose demos know what to expect.
const (
	partStart = 2048 // 1 MiB alignment, as fdisk does

	// Drive 1: FAT32 "EVIDENCE" (40 MiB) + ext4 "linuxdata" (rest minus 1 MiB).
	d1FatSectors = 40 << 20 / 512

	// Drive 2: FAT32 "CAMERA" (36 MiB: FAT32 needs at least 65525 clusters, or readers such as
	// SleuthKit take it for FAT16), then an unpartitioned region of pseudo-random bytes (a
	// wiped-then-reused area, the kind of place carving looks at) holding the bad sectors.
	d2FatSectors = 36 << 20 / 512
)

// DemoBadSectors are the unreadable LBAs of the demo's second drive (SATA2). They lie in the
// unpartitioned tail so that logical imaging of its FAT32 partition succeeds while physical
// imaging and diagnose meet them.
var DemoBadSectors = []int64{80000, 80001, 90000}

// DemoDescription is the demo board: the 18 TaskForce ports in their default modes, with two
// source drives on SATA1 and SATA2 whose images live in <dataDir>/demo-drives/. The images are
// generated on first use (MBR partition tables, FAT32 and ext4 file systems full of folders and
// files) and reused afterwards; each is written under a temporary name and renamed, so a crash
// never leaves a half-written image behind. SATA2 has bad sectors and a SMART warning, for
// diagnose demos.
func DemoDescription(dataDir, applianceID string) (board.Description, error) {
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return board.Description{}, err
	}
	dir := filepath.Join(dataDir, DemoDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return board.Description{}, fmt.Errorf("demo drives: %w", err)
	}
	p1 := filepath.Join(dir, demo1File)
	p2 := filepath.Join(dir, demo2File)
	if err := ensureImage(p1, demo1Size, buildDemo1); err != nil {
		return board.Description{}, fmt.Errorf("demo drive %s: %w", demo1File, err)
	}
	if err := ensureImage(p2, demo2Size, buildDemo2); err != nil {
		return board.Description{}, fmt.Errorf("demo drive %s: %w", demo2File, err)
	}

	d := board.Description{Kind: board.KindSim, ApplianceID: applianceID}
	for _, name := range board.TaskForcePorts() {
		d.Ports = append(d.Ports, board.PortDesc{Name: name})
	}
	d.Ports[0].Drive = &board.DriveDesc{
		Path: p1, Model: demo1Model, Serial: demo1Serial, Firmware: "Z32070RL",
		ReadMBps: 400, // a SATA SSD, slowed so progress bars move in demos
	}
	// A warning, not a failure: the overall verdict passes, but reallocated and pending sectors
	// and a warm drive are what an examiner should notice in a diagnose report.
	pending, realloc, temp := len(DemoBadSectors), 12, 47
	d.Ports[1].Drive = &board.DriveDesc{
		Path: p2, Model: demo2Model, Serial: demo2Serial, Firmware: "DXM05B0Q",
		BadSectors: append([]int64(nil), DemoBadSectors...),
		ReadMBps:   120,
		SMART:      &board.SMART{Pending: &pending, Reallocated: &realloc, Temperature: &temp},
	}
	if err := d.Validate(); err != nil {
		return board.Description{}, err
	}
	return d, nil
}

// ensureImage builds the image at path unless a file of the right size is already there.
func ensureImage(path string, size int64, build func(tmp string) error) error {
	if fi, err := os.Stat(path); err == nil {
		if fi.Mode().IsRegular() && fi.Size() == size {
			return nil
		}
		return fmt.Errorf("%s exists but is not a %d-byte image; remove it to regenerate", path, size)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	_ = os.Remove(tmp) // left over by a crashed run with the same pid
	if err := build(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := syncFile(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // make the rename durable; best effort
		d.Close()
	}
	return nil
}

func syncFile(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// demoFile is one file of a demo file system.
type demoFile struct {
	path string
	data []byte
}

func buildDemo1(tmp string) error {
	rng := rand.New(rand.NewPCG(1, 171108456213))
	sectors := uint32(demo1Size / 512)
	extStart := uint32(partStart + d1FatSectors)
	tbl := &mbr.Table{LogicalSectorSize: 512, PhysicalSectorSize: 512, Partitions: []*mbr.Partition{
		{Index: 1, Bootable: true, Type: mbr.Fat32LBA, Start: partStart, Size: d1FatSectors},
		{Index: 2, Type: mbr.Linux, Start: extStart, Size: sectors - extStart - partStart},
	}}
	return buildDisk(tmp, demo1Size, tbl, func(d *disk.Disk) error {
		if err := fillFS(d, 1, filesystem.TypeFat32, "EVIDENCE", officeFiles(rng)); err != nil {
			return fmt.Errorf("fat32: %w", err)
		}
		if err := fillFS(d, 2, filesystem.TypeExt4, "linuxdata", linuxFiles(rng)); err != nil {
			return fmt.Errorf("ext4: %w", err)
		}
		return nil
	}, nil)
}

func buildDemo2(tmp string) error {
	rng := rand.New(rand.NewPCG(2, 106001))
	tbl := &mbr.Table{LogicalSectorSize: 512, PhysicalSectorSize: 512, Partitions: []*mbr.Partition{
		{Index: 1, Type: mbr.Fat32LBA, Start: partStart, Size: d2FatSectors},
	}}
	tail := func(f *os.File) error {
		// Pseudo-random bytes from the end of the partition to the end of the disk.
		start := int64(partStart+d2FatSectors) * 512
		buf := make([]byte, 1<<20)
		for off := start; off < demo2Size; off += int64(len(buf)) {
			for i := 0; i+8 <= len(buf); i += 8 {
				v := rng.Uint64()
				for k := range 8 {
					buf[i+k] = byte(v >> (8 * k))
				}
			}
			n := min(int64(len(buf)), demo2Size-off)
			if _, err := f.WriteAt(buf[:n], off); err != nil {
				return err
			}
		}
		return nil
	}
	return buildDisk(tmp, demo2Size, tbl, func(d *disk.Disk) error {
		if err := fillFS(d, 1, filesystem.TypeFat32, "CAMERA", cameraFiles(rng)); err != nil {
			return fmt.Errorf("fat32: %w", err)
		}
		return nil
	}, tail)
}

// buildDisk creates the image, writes the partition table, lets fill create file systems, closes
// the disk, then lets raw write to the file directly (for regions outside any file system).
func buildDisk(tmp string, size int64, tbl *mbr.Table, fill func(*disk.Disk) error, raw func(*os.File) error) error {
	d, err := diskfs.Create(tmp, size, diskfs.SectorSizeDefault)
	if err != nil {
		return err
	}
	if err := d.Partition(tbl); err != nil {
		d.Close()
		return fmt.Errorf("partition table: %w", err)
	}
	if err := fill(d); err != nil {
		d.Close()
		return err
	}
	if err := d.Close(); err != nil {
		return err
	}
	if raw == nil {
		return nil
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := raw(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// fillFS creates a file system on a partition and writes files, creating parent folders.
// Paths are relative: go-diskfs v1.9.4's ext4 rejects a leading '/' in Mkdir.
func fillFS(d *disk.Disk, part int, typ filesystem.Type, label string, files []demoFile) error {
	fs, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: part, FSType: typ, VolumeLabel: label})
	if err != nil {
		return err
	}
	made := map[string]bool{".": true, "": true}
	var mkdirAll func(dir string) error
	mkdirAll = func(dir string) error {
		if made[dir] {
			return nil
		}
		if err := mkdirAll(path.Dir(dir)); err != nil {
			return err
		}
		if err := fs.Mkdir(fsPath(typ, dir)); err != nil {
			return fmt.Errorf("mkdir %s: %w", dir, err)
		}
		made[dir] = true
		return nil
	}
	for _, f := range files {
		if err := mkdirAll(path.Dir(f.path)); err != nil {
			return err
		}
		h, err := fs.OpenFile(fsPath(typ, f.path), os.O_CREATE|os.O_RDWR|os.O_TRUNC)
		if err != nil {
			return fmt.Errorf("create %s: %w", f.path, err)
		}
		if _, err := h.Write(f.data); err != nil {
			h.Close()
			return fmt.Errorf("write %s: %w", f.path, err)
		}
		if err := h.Close(); err != nil {
			return fmt.Errorf("close %s: %w", f.path, err)
		}
	}
	return nil
}

// fsPath adapts a relative path to what each go-diskfs file system accepts: FAT wants it rooted.
func fsPath(typ filesystem.Type, p string) string {
	if typ == filesystem.TypeExt4 {
		return p
	}
	return "/" + p
}

// DemoFiles lists the files the demo generator writes on SATA1's FAT32 partition (paths relative
// to the root), so tests and docs can check a logical image against it.
func DemoFiles() []string {
	var out []string
	for _, f := range officeFiles(rand.New(rand.NewPCG(1, 1))) {
		out = append(out, f.path)
	}
	return out
}

var demoTime = time.Date(2021, 12, 30, 13, 30, 0, 0, time.UTC)

func officeFiles(rng *rand.Rand) []demoFile {
	var fs []demoFile
	add := func(p string, b []byte) { fs = append(fs, demoFile{p, b}) }
	add("README.TXT", []byte("Evidence drive for the evidenced demo board.\r\nGenerated "+demoTime.Format(time.DateOnly)+".\r\n"))
	for i := 1; i <= 6; i++ {
		add(fmt.Sprintf("Documents/Reports/report-%02d.txt", i), prose(rng, 2000+rng.IntN(6000)))
	}
	add("Documents/Finance/ledger-2021.csv", ledger(rng, 400))
	add("Documents/Finance/ledger-2022.csv", ledger(rng, 250))
	add("Documents/Letters/letter-to-bank.txt", prose(rng, 3000))
	for i := 1; i <= 8; i++ {
		add(fmt.Sprintf("Pictures/Holiday/IMG_%04d.JPG", 1000+i), fakeJPEG(rng, 40_000+rng.IntN(120_000)))
	}
	add("Pictures/Screenshots/screen1.png", fakePNG(rng, 60_000))
	add("Projects/evidenced/notes.md", []byte("# Notes\n\n- image SATA1 to //server/share\n- verify hashes\n"))
	add("Projects/evidenced/data.bin", randomBytes(rng, 1<<20))
	add("Archive/old/backup-2019.zip", randomBytes(rng, 512<<10))
	return fs
}

func linuxFiles(rng *rand.Rand) []demoFile {
	var fs []demoFile
	add := func(p string, b []byte) { fs = append(fs, demoFile{p, b}) }
	add("etc/hostname", []byte("suspect-laptop\n"))
	add("etc/passwd", []byte("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n"))
	add("home/alice/.bash_history", []byte("ls -la\ncd Documents\nshred -u plans.txt\nscp notes.txt bob@10.0.0.7:\n"))
	add("home/alice/Documents/notes.txt", prose(rng, 5000))
	add("home/alice/Downloads/archive.tar.gz", randomBytes(rng, 256<<10))
	add("var/log/syslog", logLines(rng, 300))
	return fs
}

func cameraFiles(rng *rand.Rand) []demoFile {
	var fs []demoFile
	add := func(p string, b []byte) { fs = append(fs, demoFile{p, b}) }
	for i := 1; i <= 12; i++ {
		add(fmt.Sprintf("DCIM/100CANON/IMG_%04d.JPG", 4700+i), fakeJPEG(rng, 80_000+rng.IntN(200_000)))
	}
	add("DCIM/101CANON/MVI_4800.MOV", randomBytes(rng, 2<<20))
	add("MISC/AUTPRINT.MRK", []byte("[HDR]\r\nGEN REV = 01.10\r\n"))
	return fs
}

var words = strings.Fields(`the of and to in a is that for it as was with be by on not he this are or his from at
which but have an they you were her she there been one all we their has would when if so no will more
transfer account meeting invoice shipment payment confidential project deadline server backup password`)

func prose(rng *rand.Rand, n int) []byte {
	var b strings.Builder
	for b.Len() < n {
		w := words[rng.IntN(len(words))]
		b.WriteString(w)
		if rng.IntN(12) == 0 {
			b.WriteString(".\r\n")
		} else {
			b.WriteByte(' ')
		}
	}
	return []byte(b.String())
}

func ledger(rng *rand.Rand, rows int) []byte {
	var b strings.Builder
	b.WriteString("date,account,amount,memo\r\n")
	for i := range rows {
		day := demoTime.AddDate(0, 0, -rows+i)
		fmt.Fprintf(&b, "%s,%08d,%d.%02d,%s\r\n", day.Format(time.DateOnly), rng.IntN(1e8), rng.IntN(10000), rng.IntN(100), words[rng.IntN(len(words))])
	}
	return []byte(b.String())
}

func logLines(rng *rand.Rand, n int) []byte {
	var b strings.Builder
	for i := range n {
		t := demoTime.Add(time.Duration(i) * 37 * time.Second)
		fmt.Fprintf(&b, "%s suspect-laptop sshd[%d]: Accepted publickey for alice from 10.0.0.%d\n", t.Format(time.Stamp), 1000+rng.IntN(30000), rng.IntN(254)+1)
	}
	return []byte(b.String())
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// fakeJPEG has real JPEG start/end markers and a JFIF header around random data, so that file-type
// detection and carving find something; it is not a decodable picture.
func fakeJPEG(rng *rand.Rand, n int) []byte {
	head := []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x48, 0x00, 0x48, 0x00, 0x00}
	b := append(head, randomBytes(rng, n)...)
	return append(b, 0xFF, 0xD9)
}

func fakePNG(rng *rand.Rand, n int) []byte {
	return append([]byte("\x89PNG\r\n\x1a\n"), randomBytes(rng, n)...)
}
