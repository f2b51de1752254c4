// Command stage1 is /init of the appliance's initramfs (built with u-root): it loads the storage
// modules, picks the root slot from the boot record (a slot on trial uses up one try; with none left
// the active slot boots again), mounts the slot's squashfs read-only and switches root to systemd.
// A slot that does not mount or has no /sbin/init is given up at once for the other one.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/evidenced/evidenced/rootfs/slots"
	"github.com/u-root/u-root/pkg/mount"
	"golang.org/x/sys/unix"
)

const (
	newRoot    = "/newroot"
	moduleList = "/lib/modules/stage1.list" // .ko paths in load order, written by rootfs/build.sh
	waitParts  = 20 * time.Second
)

func main() {
	log.SetPrefix("stage1: ")
	log.SetFlags(0)
	if err := run(); err != nil {
		log.Printf("cannot boot: %v; rebooting in 10 s", err)
		time.Sleep(10 * time.Second)
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	}
}

func run() error {
	for _, m := range []struct{ src, dst, fs string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"}, {"tmpfs", "/run", "tmpfs"},
	} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.src, m.dst, m.fs, unix.MS_NOSUID, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	if err := loadModules(moduleList); err != nil {
		return err
	}
	sys := slots.Sysfs{Root: "/"}
	stateDev, err := waitDevice(sys, slots.PartBootState)
	if err != nil {
		return err
	}
	dev := slots.File{Path: stateDev}
	rec, err := slots.Read(dev)
	if err != nil {
		log.Printf("boot record: %v (booting slot %s)", err, rec.Active)
	}
	slot, next, changed := rec.Next()
	if changed {
		if _, err := slots.Write(dev, next); err != nil {
			return err
		}
	}
	switch {
	case rec.Try != slots.NoSlot && slot == rec.Try:
		log.Printf("slot %s on trial (%d tries left after this one); slot %s is the fallback", slot, next.TriesLeft, rec.Active)
	case rec.Try != slots.NoSlot:
		log.Printf("slot %s used up its tries without a good boot: falling back to slot %s", rec.Try, slot)
	default:
		log.Printf("booting slot %s", slot)
	}
	if err := mountSlot(sys, slot); err != nil {
		log.Printf("slot %s: %v", slot, err)
		if slot == rec.Try {
			// The trial is over: it cannot even start.
			next.Try, next.TriesLeft = slots.NoSlot, 0
			if _, werr := slots.Write(dev, next); werr != nil {
				return werr
			}
		}
		slot = slot.Other()
		log.Printf("falling back to slot %s", slot)
		if err := mountSlot(sys, slot); err != nil {
			return fmt.Errorf("slot %s: %w", slot, err)
		}
	}
	log.Printf("switching root to slot %s", slot)
	return mount.SwitchRoot(newRoot, "/sbin/init")
}

// loadModules loads each module of the list in order (dependencies first); a module already
// loaded or built in is fine.
func loadModules(list string) error {
	f, err := os.Open(list)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("module list: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" {
			continue
		}
		m, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("module: %w", err)
		}
		err = unix.FinitModule(int(m.Fd()), "", 0)
		m.Close()
		// ENODEV: hardware the module drives is absent (a CPU without the instructions it needs).
		if err != nil && !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ENODEV) {
			log.Printf("load %s: %v", filepath.Base(p), err)
		}
	}
	return sc.Err()
}

// waitDevice waits for the partition to appear (drivers probe disks asynchronously).
func waitDevice(sys slots.Sysfs, name string) (string, error) {
	deadline := time.Now().Add(waitParts)
	for {
		p, err := sys.Device(name)
		if err == nil {
			return p, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("after %s: %w", waitParts, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mountSlot(sys slots.Sysfs, slot slots.Slot) error {
	p, err := waitDevice(sys, slot.Partition())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(newRoot, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(p, newRoot, "squashfs", unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("mount %s: %w", p, err)
	}
	if err := hasInit(newRoot, "/sbin/init"); err != nil {
		_ = unix.Unmount(newRoot, 0)
		return fmt.Errorf("no init on %s: %w", p, err)
	}
	return nil
}

// hasInit checks that path, resolved inside root, is an executable file.
func hasInit(root, path string) error {
	p, err := resolveIn(root, path)
	if err != nil {
		return err
	}
	fi, err := os.Stat(filepath.Join(root, p))
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s (%s) is not an executable file", path, p)
	}
	return nil
}

// resolveIn resolves the symbolic links of path as if root were "/" (absolute links point into
// root, as they will after the switch) and returns the resolved path.
func resolveIn(root, path string) (string, error) {
	out := "/"
	parts := strings.Split(strings.Trim(path, "/"), "/")
	links := 0
	for len(parts) > 0 {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			out = filepath.Dir(out)
			continue
		}
		next := filepath.Join(out, part)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			out = next
			continue
		}
		if links++; links > 40 {
			return "", fmt.Errorf("%s: too many symbolic links", path)
		}
		t, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(t) {
			out = "/"
		}
		parts = append(strings.Split(strings.Trim(t, "/"), "/"), parts...)
	}
	return out, nil
}
