// Package hal is the hardware abstraction of the appliance: the board with its ports, the drives
// attached to them, and the plug/unplug events. It knows nothing of tasks, images or the API; the
// daemon drives it. Implementations: hal/sim (image files, fault injection) and hal/linux (real
// ports through sysfs and udev).
package hal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Mode is the Source switch of a port. Drives on source ports are never written.
type Mode string

const (
	ModeSource Mode = "source"
	ModeTarget Mode = "target"
)

// ParseMode accepts a mode name case-insensitively.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(s)); m {
	case ModeSource, ModeTarget:
		return m, nil
	}
	return "", fmt.Errorf("unknown port mode %q (accepted: source, target)", s)
}

// PortState is what a port knows about its drive right now.
type PortState string

const (
	StateOff         PortState = "off"          // not powered
	StateIdentifying PortState = "identifying"  // powered, drive spinning up or being identified
	StateReady       PortState = "ready"        // a drive is identified
	StateNotDetected PortState = "not-detected" // powered, nothing answers
)

// Identity is what identification tells about a drive.
type Identity struct {
	Model      string `json:"model"`
	Serial     string `json:"serial"`
	Firmware   string `json:"firmware,omitempty"`
	Size       int64  `json:"size"`       // bytes
	SectorSize int    `json:"sectorSize"` // logical sector, bytes
	Bus        string `json:"bus"`        // sata, sas, usb, ide, nvme, ext
	// NativeSize is the drive's size without its Host Protected Area, in bytes, when the drive
	// reports one larger than Size (an HPA hides NativeSize-Size bytes); 0 = no HPA seen.
	NativeSize int64 `json:"nativeSize,omitempty"`
}

// Health is the SMART-like view of a drive, where the bus offers one.
type Health struct {
	Supported      bool              `json:"supported"`
	Passed         bool              `json:"passed"`
	TemperatureC   int               `json:"temperatureC,omitempty"`
	PowerOnHours   int               `json:"powerOnHours,omitempty"`
	Reallocated    int               `json:"reallocatedSectors,omitempty"`
	PendingSectors int               `json:"pendingSectors,omitempty"`
	Attributes     map[string]string `json:"attributes,omitempty"`
	// SMART is the ATA attribute table with normalized values and thresholds, in ID order, for
	// the report's verdicts; nil where the bus has none (NVMe's health log is in Attributes).
	SMART []SMARTAttribute `json:"smart,omitempty"`
}

// SMARTAttribute is one row of an ATA SMART attribute table.
type SMARTAttribute struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	// Value and Worst are the normalized values (1–253, higher is better); the attribute fails
	// when Value falls to Threshold or below. Threshold 0 never fails.
	Value     int    `json:"value"`
	Worst     int    `json:"worst"`
	Threshold int    `json:"threshold"`
	Raw       string `json:"raw"`
	PreFail   bool   `json:"preFail"` // failing predicts the drive's failure (else: old age)
}

// Reader reads a drive. It is write-blocked: there is no way to write through it.
type Reader interface {
	io.ReaderAt
	io.Closer
	Size() int64
	SectorSize() int
}

// Drive is an identified drive on a port.
type Drive interface {
	Identity() Identity
	// Open returns a read-only handle; write-blocking is asserted before the first access.
	Open() (Reader, error)
	Health(ctx context.Context) (Health, error)
}

// Resetter is a Drive that can be reset without cutting its power (a SCSI device reset): the first
// step of unfreezing a drive that stopped answering.
type Resetter interface {
	Reset() error
}

// Port is one physical connector of the board.
type Port interface {
	Name() string // SATA1, USB4, NVME2, ...
	Bus() string
	Mode() Mode
	SetMode(Mode) error
	Powered() bool
	// PowerOn powers the port and starts identification; it returns at once.
	PowerOn(ctx context.Context) error
	PowerOff() error
	State() PortState
	// Drive is the identified drive, or nil when State is not StateReady.
	Drive() Drive
	// Changed returns a channel that is closed at the port's next change of State or Drive
	// (power, identification, plug, unplug). Take it before reading State, so that a change in
	// between is not missed, then wait on it instead of polling; see WaitIdentified. It may also
	// close for a change invisible to State: read State again.
	Changed() <-chan struct{}
}

// EventKind says what happened on a port.
type EventKind string

const (
	Plugged   EventKind = "plugged"
	Unplugged EventKind = "unplugged"
)

// Event is a hot-plug event.
type Event struct {
	Port string
	Kind EventKind
	Time time.Time
}

// Board is the whole appliance board.
type Board interface {
	ApplianceID() string
	Ports() []Port // in board order
	Port(name string) (Port, bool)
	// Subscribe delivers hot-plug events until ctx ends; slow subscribers lose events, never block the board.
	Subscribe(ctx context.Context) <-chan Event
	Close() error
}

// Errors a Reader returns. Callers test with errors.Is / errors.As.
var (
	// ErrGone: the drive disappeared (unplugged, port powered off).
	ErrGone = errors.New("drive is gone")
	// ErrWriteBlocked: something tried to write to a source drive.
	ErrWriteBlocked = errors.New("drive is write-blocked")
)

// MediaError is an unreadable sector range.
type MediaError struct {
	LBA   int64 // first unreadable sector
	Count int64 // sectors, at least 1
}

func (e *MediaError) Error() string {
	return fmt.Sprintf("unreadable sectors at LBA %d (+%d)", e.LBA, e.Count)
}
