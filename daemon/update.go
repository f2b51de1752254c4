package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/evidenced/evidenced/rootfs/slots"
)

// updateCmd is `evidenced update`:
//
//	evidenced update ROOTFS-IMAGE   write the image into the inactive root slot, check its SHA-256,
//	                                try it on the next boot
//	evidenced update --confirm      the running slot booted well: make it the active one
//	evidenced update --status       print the boot record
func updateCmd(args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("update", flag.ContinueOnError)
	confirm := fs.Bool("confirm", false, "make the running root slot the active one (after a good boot)")
	status := fs.Bool("status", false, "print the running slot and the boot record")
	tries := fs.Uint("tries", 1, "boots the new slot gets to come up before the old one boots again")
	if err := fs.Parse(args); err != nil {
		return err
	}
	disk := slots.Disk{Sys: slots.Sysfs{Root: "/"}, Log: log}
	switch {
	case *status:
		rec, booted, err := disk.Status()
		if err != nil && booted == slots.NoSlot {
			return err
		}
		fmt.Printf("running=%s active=%s try=%s triesLeft=%d", booted, rec.Active, rec.Try, rec.TriesLeft)
		if rec.Try != slots.NoSlot {
			fmt.Printf(" trySHA256=%x trySize=%d", rec.TrySHA256, rec.TrySize)
		}
		fmt.Println()
		return err
	case *confirm:
		s, err := disk.Confirm()
		if errors.Is(err, slots.ErrNotSlot) {
			log.Info("not running from a root slot: nothing to confirm", "err", err)
			return nil
		}
		if err != nil {
			return fmt.Errorf("confirm boot: %w", err)
		}
		if s != slots.NoSlot {
			log.Info("root slot confirmed: it is now the active slot", "slot", s.String())
		}
		return nil
	}
	if fs.NArg() != 1 {
		return errors.New("usage: evidenced update ROOTFS-IMAGE | --confirm | --status")
	}
	if *tries < 1 || *tries > 255 {
		return fmt.Errorf("--tries %d: between 1 and 255", *tries)
	}
	image := fs.Arg(0)
	want, err := slots.ExpectedHash(image)
	if err != nil {
		return err
	}
	res, err := disk.Update(image, want, uint8(*tries))
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	log.Info("root image written; reboot to try it", "slot", res.Slot.String(), "device", res.Device,
		"bytes", res.Size, "sha256", res.SHA256, "hashFileChecked", want != "")
	return nil
}
