package slots

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Sysfs finds block devices by GPT partition name through /sys/class/block (no udev needed, so
// stage 1 can use it too).
type Sysfs struct {
	Root string // "/" normally; a test tree otherwise
}

func (s Sysfs) path(p ...string) string {
	root := s.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(append([]string{root}, p...)...)
}

func readUevent(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			m[k] = v
		}
	}
	return m, sc.Err()
}

// ErrNoPartition is returned when no block device has the partition name asked for.
var ErrNoPartition = errors.New("no partition with that name")

// Device returns the /dev path of the partition named name.
func (s Sysfs) Device(name string) (string, error) {
	ents, err := os.ReadDir(s.path("sys/class/block"))
	if err != nil {
		return "", fmt.Errorf("list block devices: %w", err)
	}
	for _, e := range ents {
		u, err := readUevent(s.path("sys/class/block", e.Name(), "uevent"))
		if err != nil {
			continue
		}
		if u["PARTNAME"] == name {
			return s.path("dev", u["DEVNAME"]), nil
		}
	}
	return "", fmt.Errorf("partition %s: %w", name, ErrNoPartition)
}

// PartitionOfDev returns the GPT name of the partition with device number dev ("" when it has none).
func (s Sysfs) PartitionOfDev(dev uint64) (string, error) {
	u, err := readUevent(s.path("sys/dev/block", fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev)), "uevent"))
	if err != nil {
		return "", fmt.Errorf("block device %d:%d: %w", unix.Major(dev), unix.Minor(dev), err)
	}
	return u["PARTNAME"], nil
}

// ErrNotSlot is returned when the running root file system is not on a root slot (a development
// machine, not the appliance).
var ErrNotSlot = errors.New("the root file system is not on an appliance root slot")

// Booted returns the slot the running system's root file system is on.
func (s Sysfs) Booted() (Slot, error) {
	var st unix.Stat_t
	if err := unix.Stat(s.path(), &st); err != nil {
		return NoSlot, fmt.Errorf("stat /: %w", err)
	}
	name, err := s.PartitionOfDev(st.Dev)
	if err != nil {
		// Squashfs and other non-block roots have no /sys/dev/block entry.
		return NoSlot, fmt.Errorf("%w (%v)", ErrNotSlot, err)
	}
	slot, ok := SlotOfPartition(name)
	if !ok {
		return NoSlot, fmt.Errorf("%w (root on partition %q)", ErrNotSlot, name)
	}
	return slot, nil
}
