package slots

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestNextBootCounter(t *testing.T) {
	r := Record{Active: SlotA, Try: SlotB, TriesLeft: 2}
	var seen []Slot
	for range 4 {
		s, n, _ := r.Next()
		seen = append(seen, s)
		r = n
	}
	// Two tries of B, then A for good (the trial is over), and A again.
	want := []Slot{SlotB, SlotB, SlotA, SlotA}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("boots %v, want %v", seen, want)
		}
	}
	if r.Try != NoSlot {
		t.Fatalf("trial still recorded after fallback: %+v", r)
	}
	if s, _, changed := (Record{Active: SlotB}).Next(); s != SlotB || changed {
		t.Fatalf("no trial: boot %s changed=%v, want B unchanged", s, changed)
	}
}

func TestRecordSurvivesTornWrite(t *testing.T) {
	f := File{Path: filepath.Join(t.TempDir(), "state")}
	if err := os.WriteFile(f.Path, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, err := Read(f); err == nil || r.Active != SlotA {
		t.Fatalf("blank partition: %+v, %v; want slot A and an error", r, err)
	}
	for i, rec := range []Record{{Active: SlotA}, {Active: SlotA, Try: SlotB, TriesLeft: 1}, {Active: SlotB}} {
		got, err := Write(f, rec)
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq != uint32(i+1) {
			t.Fatalf("write %d: seq %d", i, got.Seq)
		}
	}
	r, err := Read(f)
	if err != nil || r.Active != SlotB || r.Try != NoSlot || r.Seq != 3 {
		t.Fatalf("read %+v, %v; want the third record", r, err)
	}
	// The newest copy (seq 3, in sector 0) torn by a power loss: the previous one is read.
	b, _ := os.ReadFile(f.Path)
	b[20] ^= 0xff
	os.WriteFile(f.Path, b, 0o600)
	r, err = Read(f)
	if err != nil || r.Seq != 2 || r.Try != SlotB {
		t.Fatalf("after a torn write: %+v, %v; want seq 2 with B on trial", r, err)
	}
	// Writing again goes over the torn copy, keeping the good one.
	if _, err := Write(f, Record{Active: SlotA}); err != nil {
		t.Fatal(err)
	}
	if r, err := Read(f); err != nil || r.Seq != 3 || r.Active != SlotA {
		t.Fatalf("%+v %v", r, err)
	}
	b, _ = os.ReadFile(f.Path)
	if c1, err := decode(b[SectorSize : 2*SectorSize]); err != nil || c1.Seq != 2 {
		t.Fatalf("the good copy was overwritten: %+v %v", c1, err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Record{Active: SlotA, Try: SlotB, TriesLeft: 1, Seq: 7}.encode())
	f.Add(make([]byte, SectorSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decode(b)
		if err == nil && !bytes.Equal(r.encode(), b) {
			t.Fatalf("decoded %+v does not encode back to its input", r)
		}
	})
}

// fakeDisk lays out a sysfs and /dev tree in which the running root (the temp dir itself) is on
// root slot booted; partitions are plain files.
func fakeDisk(t *testing.T, booted Slot) (Disk, string) {
	t.Helper()
	root := t.TempDir()
	var st unix.Stat_t
	if err := unix.Stat(root, &st); err != nil {
		t.Fatal(err)
	}
	mk := func(p, content string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk(fmt.Sprintf("sys/dev/block/%d:%d/uevent", unix.Major(st.Dev), unix.Minor(st.Dev)), "DEVNAME=vda3\nPARTNAME="+booted.Partition()+"\n")
	for i, name := range []string{PartBootState, PartRootA, PartRootB} {
		dev := fmt.Sprintf("vda%d", i+2)
		mk("sys/class/block/"+dev+"/uevent", "MAJOR=254\nDEVNAME="+dev+"\nDEVTYPE=partition\nPARTNAME="+name+"\n")
		mk("dev/"+dev, strings.Repeat("\x00", 4<<20))
	}
	return Disk{Sys: Sysfs{Root: root}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, root
}

func TestUpdateWritesInactiveSlotAndConfirm(t *testing.T) {
	disk, root := fakeDisk(t, SlotA)
	img := filepath.Join(t.TempDir(), "root.squashfs")
	content := append([]byte("hsqs"), bytes.Repeat([]byte("new root "), 100000)...)
	os.WriteFile(img, content, 0o644)
	slotA := filepath.Join(root, "dev/vda3")
	before, _ := os.ReadFile(slotA)

	sum := sha256.Sum256(content)
	if _, err := disk.Update(img, strings.Repeat("0", 64), 1); err == nil || !strings.Contains(err.Error(), "hash file says") {
		t.Fatalf("a wrong expected hash was accepted: %v", err)
	}
	if rec, _, _ := disk.Status(); rec.Try != NoSlot {
		t.Fatalf("after a failed update a slot is on trial: %+v", rec)
	}
	res, err := disk.Update(img, hex.EncodeToString(sum[:]), 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Slot != SlotB || res.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("%+v", res)
	}
	got, _ := os.ReadFile(filepath.Join(root, "dev/vda4"))
	if !bytes.Equal(got[:len(content)], content) {
		t.Fatal("slot B does not hold the image")
	}
	if after, _ := os.ReadFile(slotA); !bytes.Equal(after, before) {
		t.Fatal("the running slot A was written")
	}
	rec, booted, err := disk.Status()
	if err != nil || booted != SlotA || rec.Active != SlotA || rec.Try != SlotB || rec.TriesLeft != 1 || rec.TrySHA256 != sum {
		t.Fatalf("boot record %+v (booted %s, %v)", rec, booted, err)
	}
	// Still running A (the trial has not booted yet): confirming keeps A and ends the trial.
	if s, err := disk.Confirm(); err != nil || s != SlotA {
		t.Fatalf("confirm on A: %s %v", s, err)
	}
	// Now the system runs B (as stage 1 would boot it): confirm makes B active.
	disk2, root2 := fakeDisk(t, SlotB)
	os.WriteFile(filepath.Join(root2, "dev/vda2"), mustRead(t, filepath.Join(root, "dev/vda2")), 0o644)
	Write(File{Path: filepath.Join(root2, "dev/vda2")}, Record{Active: SlotA, Try: SlotB})
	if s, err := disk2.Confirm(); err != nil || s != SlotB {
		t.Fatalf("confirm on B: %s %v", s, err)
	}
	if rec, _, _ := disk2.Status(); rec.Active != SlotB || rec.Try != NoSlot {
		t.Fatalf("after confirm: %+v", rec)
	}
	if s, err := disk2.Confirm(); err != nil || s != NoSlot {
		t.Fatalf("second confirm: %s %v, want nothing to do", s, err)
	}
}

func TestUpdateRefusesWhatIsNotARoot(t *testing.T) {
	disk, root := fakeDisk(t, SlotA)
	img := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(img, []byte("not a file system"), 0o644)
	if _, err := disk.Update(img, "", 1); err == nil || !strings.Contains(err.Error(), "squashfs") {
		t.Fatalf("err %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.squashfs")
	os.WriteFile(big, append([]byte("hsqs"), make([]byte, 5<<20)...), 0o644)
	if _, err := disk.Update(big, "", 1); err == nil || !strings.Contains(err.Error(), "holds") {
		t.Fatalf("an image larger than the slot: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "dev/vda4")); !bytes.Equal(b, make([]byte, 4<<20)) {
		t.Fatal("slot B written by a refused update")
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
