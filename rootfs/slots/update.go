package slots

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Disk is the appliance disk as the running system sees it.
type Disk struct {
	Sys Sysfs
	Log *slog.Logger
}

// UpdateResult says what Update did.
type UpdateResult struct {
	Slot   Slot
	Device string
	Size   int64
	SHA256 string
}

// ExpectedHash reads the SHA-256 that sha256sum wrote for image (IMAGE.sha256, first field);
// "" when there is no such file.
func ExpectedHash(image string) (string, error) {
	b, err := os.ReadFile(image + ".sha256")
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("hash file: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 || len(f[0]) != 64 {
		return "", fmt.Errorf("hash file %s.sha256: no SHA-256 in it", image)
	}
	if _, err := hex.DecodeString(f[0]); err != nil {
		return "", fmt.Errorf("hash file %s.sha256: %w", image, err)
	}
	return strings.ToLower(f[0]), nil
}

// Update writes the root image into the slot that is not running, reads it back to check its
// SHA-256 (against want too when want is not ""), and records the slot as on trial for the next
// boot with tries boots to prove itself. The running slot and the data partition are not touched.
func (d Disk) Update(image, want string, tries uint8) (UpdateResult, error) {
	booted, err := d.Sys.Booted()
	if err != nil {
		return UpdateResult{}, err
	}
	target := booted.Other()
	dev, err := d.Sys.Device(target.Partition())
	if err != nil {
		return UpdateResult{}, err
	}
	stateDev, err := d.Sys.Device(PartBootState)
	if err != nil {
		return UpdateResult{}, err
	}
	in, err := os.Open(image)
	if err != nil {
		return UpdateResult{}, fmt.Errorf("root image: %w", err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return UpdateResult{}, fmt.Errorf("root image: %w", err)
	}
	if err := checkRootImage(in); err != nil {
		return UpdateResult{}, err
	}
	out, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return UpdateResult{}, fmt.Errorf("slot %s: %w", target, err)
	}
	defer out.Close()
	capacity, err := out.Seek(0, io.SeekEnd)
	if err != nil {
		return UpdateResult{}, fmt.Errorf("slot %s size: %w", target, err)
	}
	if fi.Size() > capacity {
		return UpdateResult{}, fmt.Errorf("root image is %d bytes, slot %s holds %d", fi.Size(), target, capacity)
	}
	// The slot stops being bootable before it is overwritten: a trial of it must not survive a
	// half-written root.
	rec, err := Read(File{stateDev})
	if err != nil {
		d.Log.Warn("boot record unreadable, starting a new one", "err", err)
	}
	rec.Active, rec.Try, rec.TriesLeft, rec.TrySHA256, rec.TrySize = booted, NoSlot, 0, [32]byte{}, 0
	if err := writeRecord(stateDev, rec); err != nil {
		return UpdateResult{}, err
	}
	d.Log.Info("writing root image", "image", image, "slot", target.String(), "device", dev, "bytes", fi.Size())
	h := sha256.New()
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return UpdateResult{}, err
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		return UpdateResult{}, err
	}
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err != nil {
		return UpdateResult{}, fmt.Errorf("write slot %s: %w", target, err)
	}
	if err := out.Sync(); err != nil {
		return UpdateResult{}, fmt.Errorf("sync slot %s: %w", target, err)
	}
	written := h.Sum(nil)
	if want != "" && hex.EncodeToString(written) != want {
		return UpdateResult{}, fmt.Errorf("root image SHA-256 %x, its hash file says %s: slot %s left unbootable", written, want, target)
	}
	// Read back what the slot now holds, past the page cache.
	if err := dropCache(out); err != nil {
		d.Log.Warn("drop page cache before read-back", "err", err)
	}
	rh := sha256.New()
	if _, err := io.Copy(rh, io.NewSectionReader(out, 0, n)); err != nil {
		return UpdateResult{}, fmt.Errorf("read back slot %s: %w", target, err)
	}
	if !bytes.Equal(rh.Sum(nil), written) {
		return UpdateResult{}, fmt.Errorf("slot %s reads back SHA-256 %x, %x was written: slot left unbootable", target, rh.Sum(nil), written)
	}
	rec.Try, rec.TriesLeft, rec.TrySize = target, tries, uint64(n)
	copy(rec.TrySHA256[:], written)
	if err := writeRecord(stateDev, rec); err != nil {
		return UpdateResult{}, err
	}
	return UpdateResult{Slot: target, Device: dev, Size: n, SHA256: hex.EncodeToString(written)}, nil
}

// Confirm makes the running slot the active one when it is the slot on trial: the boot was good.
// It returns the slot confirmed, or NoSlot when there was nothing to confirm.
func (d Disk) Confirm() (Slot, error) {
	booted, err := d.Sys.Booted()
	if err != nil {
		return NoSlot, err
	}
	stateDev, err := d.Sys.Device(PartBootState)
	if err != nil {
		return NoSlot, err
	}
	rec, err := Read(File{stateDev})
	if err != nil {
		d.Log.Warn("boot record unreadable, starting a new one", "err", err)
	}
	if rec.Active == booted && rec.Try == NoSlot && err == nil {
		return NoSlot, nil
	}
	// Whatever runs now booted well: it becomes active (after a fallback, this also drops the
	// failed trial).
	rec.Active, rec.Try, rec.TriesLeft, rec.TrySHA256, rec.TrySize = booted, NoSlot, 0, [32]byte{}, 0
	if err := writeRecord(stateDev, rec); err != nil {
		return NoSlot, err
	}
	return booted, nil
}

// Status returns the boot record and the running slot.
func (d Disk) Status() (Record, Slot, error) {
	booted, err := d.Sys.Booted()
	if err != nil {
		return Record{}, NoSlot, err
	}
	stateDev, err := d.Sys.Device(PartBootState)
	if err != nil {
		return Record{}, NoSlot, err
	}
	rec, err := Read(File{stateDev})
	return rec, booted, err
}

// File is the boot state partition (or a file), opened for each access; writes are synchronous.
type File struct{ Path string }

// ReadAt reads from the partition.
func (s File) ReadAt(p []byte, off int64) (int, error) {
	f, err := os.Open(s.Path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.ReadAt(p, off)
}

// WriteAt writes to the partition and returns once the data is on the device.
func (s File) WriteAt(p []byte, off int64) (int, error) {
	f, err := os.OpenFile(s.Path, os.O_WRONLY|os.O_SYNC, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.WriteAt(p, off)
}

// Sync does nothing: each WriteAt is synchronous.
func (s File) Sync() error { return nil }

func writeRecord(path string, r Record) error {
	_, err := Write(File{path}, r)
	return err
}

// checkRootImage refuses what is not a squashfs file system (a wrong file given by mistake).
func checkRootImage(f *os.File) error {
	b := make([]byte, 4)
	if _, err := f.ReadAt(b, 0); err != nil {
		return fmt.Errorf("root image: %w", err)
	}
	if string(b) != "hsqs" {
		return errors.New("root image: not a squashfs file system (no hsqs magic)")
	}
	return nil
}
