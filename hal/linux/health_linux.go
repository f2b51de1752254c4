package linux

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"

	"github.com/anatol/smart.go"
	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/hal"
)

// Health reads SMART through anatol/smart.go: the ATA attribute table (with the drive's own
// verdict from SMART RETURN STATUS, which smart.go does not send) or the NVMe SMART / health log.
// SCSI and USB bridges without ATA pass-through, and loop devices, report Supported: false.
// smart.go opens the device read-only, so a write-blocked drive stays blocked.
func (d *Drive) Health(ctx context.Context) (hal.Health, error) {
	if err := ctx.Err(); err != nil {
		return hal.Health{}, err
	}
	if d.isGone() {
		return hal.Health{}, d.errGone()
	}
	if d.disk.Transport == "loop" || d.disk.Transport == "virtio" {
		return hal.Health{Supported: false}, nil
	}
	dev, err := smart.Open(d.devnode)
	if err != nil {
		return hal.Health{Supported: false}, nil // the drive (or its bridge) speaks no SMART
	}
	defer dev.Close()
	switch v := dev.(type) {
	case *smart.SataDevice:
		return d.ataHealth(v)
	case *smart.NVMeDevice:
		return nvmeHealth(v)
	}
	return hal.Health{Supported: false}, nil
}

func (d *Drive) ataHealth(v *smart.SataDevice) (hal.Health, error) {
	page, err := v.ReadSMARTData()
	if err != nil {
		return hal.Health{}, fmt.Errorf("%s: SMART data: %w", d.port.name, err)
	}
	// Thresholds are for the report's verdicts; a drive that does not give them still has its values.
	var thr map[uint8]uint8
	if tp, err := v.ReadSMARTThresholds(); err == nil {
		thr = tp.Thresholds
	}
	h := hal.Health{Supported: true, Attributes: map[string]string{}}
	for id, a := range page.Attrs {
		name := a.Name
		if name == "" {
			name = "Unknown_Attribute"
		}
		h.Attributes[fmt.Sprintf("%d %s", id, name)] = strconv.FormatUint(a.ValueRaw, 10)
		h.SMART = append(h.SMART, hal.SMARTAttribute{ID: int(id), Name: name, Value: int(a.Current), Worst: int(a.Worst),
			Threshold: int(thr[id]), Raw: strconv.FormatUint(a.ValueRaw, 10), PreFail: a.Flags&smart.AtaAttributeFlagPrefailure != 0})
		switch id {
		case 5:
			h.Reallocated = int(a.ValueRaw)
		case 9:
			if dur, err := a.ParseAsDuration(); err == nil {
				h.PowerOnHours = int(dur.Hours())
			} else {
				h.PowerOnHours = int(a.ValueRaw)
			}
		case 190, 194:
			if c, _, _, _, err := a.ParseAsTemperature(); err == nil && (id == 194 || h.TemperatureC == 0) {
				h.TemperatureC = c
			}
		case 197:
			h.PendingSectors = int(a.ValueRaw)
		}
	}
	slices.SortFunc(h.SMART, func(a, b hal.SMARTAttribute) int { return a.ID - b.ID })
	passed, err := d.smartStatus()
	if err != nil {
		return hal.Health{}, fmt.Errorf("%s: %w", d.port.name, err)
	}
	h.Passed = passed
	return h, nil
}

// smartStatus asks the drive for its overall verdict (SMART RETURN STATUS).
func (d *Drive) smartStatus() (bool, error) {
	f, err := os.OpenFile(d.devnode, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	cdb := SMARTStatusCDB()
	sense, err := sgCommand(f, cdb[:], nil, true)
	if err != nil {
		return false, err
	}
	return ParseSMARTStatus(sense)
}

func nvmeHealth(v *smart.NVMeDevice) (hal.Health, error) {
	l, err := v.ReadSMART()
	if err != nil {
		return hal.Health{}, fmt.Errorf("NVMe SMART log: %w", err)
	}
	h := hal.Health{
		Supported:    true,
		Passed:       l.CritWarning == 0,
		PowerOnHours: int(l.PowerOnHours.Val[0]),
		Attributes: map[string]string{
			"Critical Warning":    fmt.Sprintf("0x%02x", l.CritWarning),
			"Available Spare":     strconv.Itoa(int(l.AvailSpare)) + "%",
			"Percentage Used":     strconv.Itoa(int(l.PercentUsed)) + "%",
			"Media Errors":        strconv.FormatUint(l.MediaErrors.Val[0], 10),
			"Unsafe Shutdowns":    strconv.FormatUint(l.UnsafeShutdowns.Val[0], 10),
			"Power Cycles":        strconv.FormatUint(l.PowerCycles.Val[0], 10),
			"Error Log Entries":   strconv.FormatUint(l.NumErrLogEntries.Val[0], 10),
			"Composite Temp (K)":  strconv.Itoa(int(l.Temperature)),
			"Data Units Read":     strconv.FormatUint(l.DataUnitsRead.Val[0], 10),
			"Data Units Written":  strconv.FormatUint(l.DataUnitsWritten.Val[0], 10),
			"Available Spare Thr": strconv.Itoa(int(l.SpareThresh)) + "%",
		},
	}
	if l.Temperature > 0 {
		h.TemperatureC = int(l.Temperature) - 273
	}
	return h, nil
}
