package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	halinux "github.com/evidenced/evidenced/hal/linux"
)

// boardCmd: `evidenced board discover [--sys DIR] [--appliance-id ID]` prints a board file
// skeleton for this machine on stdout and what it saw (disks, empty SATA ports, GPIO chips) on
// stderr, for the integrator to edit into the appliance's board file.
func boardCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "discover" {
		return errors.New("usage: evidenced board discover [--sys /sys] [--appliance-id ID]")
	}
	fs := flag.NewFlagSet("board discover", flag.ContinueOnError)
	sys := fs.String("sys", "/sys", "sysfs root")
	id := fs.String("appliance-id", "EVD0001", "appliance id to put in the skeleton")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	d, err := halinux.Discover(os.DirFS(*sys))
	if err != nil {
		return fmt.Errorf("board discover: %w", err)
	}
	desc, notes := d.Skeleton(*id)
	for _, n := range notes {
		fmt.Fprintln(stderr, "#", n)
	}
	if len(desc.Ports) == 0 {
		return errors.New("board discover: no SATA, SAS, USB or NVMe port found")
	}
	if err := desc.Validate(); err != nil {
		return fmt.Errorf("board discover: the skeleton does not validate: %w", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(desc)
}
