// Package slots holds the appliance's A/B root slot state: the boot record that stage 1 reads to pick
// the root slot (with a boot counter for a slot on trial), the discovery of the GPT partitions by
// name, and the update that writes a new root into the inactive slot.
//
// The boot record lives on its own small raw partition (PartBootState) so that stage 1 needs no file
// system to read or write it. It is kept twice, in sectors 0 and 1, each with a sequence number and
// a CRC: a write goes to the older copy, so a power loss during a write leaves the other copy intact.
package slots

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Partition names (GPT PARTLABEL) of the appliance disk.
const (
	PartESP       = "evd-esp"
	PartBootState = "evd-bootstate"
	PartRootA     = "evd-root-a"
	PartRootB     = "evd-root-b"
	PartData      = "evd-data"
)

// Slot is a root slot: 'A' or 'B'; NoSlot is none.
type Slot byte

const (
	NoSlot Slot = 0
	SlotA  Slot = 'A'
	SlotB  Slot = 'B'
)

func (s Slot) String() string {
	switch s {
	case SlotA, SlotB:
		return string(rune(s))
	default:
		return "none"
	}
}

// Other returns the other slot.
func (s Slot) Other() Slot {
	if s == SlotA {
		return SlotB
	}
	return SlotA
}

// Partition returns the slot's partition name.
func (s Slot) Partition() string {
	if s == SlotB {
		return PartRootB
	}
	return PartRootA
}

// SlotOfPartition returns the slot whose partition has the given name.
func SlotOfPartition(name string) (Slot, bool) {
	switch name {
	case PartRootA:
		return SlotA, true
	case PartRootB:
		return SlotB, true
	}
	return NoSlot, false
}

// Record is the boot state.
type Record struct {
	Seq       uint32   // bumped on every write; the valid copy with the highest wins
	Active    Slot     // the slot known to boot
	Try       Slot     // a slot on trial (NoSlot when none)
	TriesLeft uint8    // trial boots left before falling back to Active
	TrySHA256 [32]byte // hash of the root written into Try (for the record; stage 1 does not re-hash)
	TrySize   uint64   // its size in bytes
}

// SectorSize is the size of one copy of the record.
const SectorSize = 512

var magic = [8]byte{'E', 'V', 'D', 'B', 'O', 'O', 'T', '1'}

// Next returns the slot to boot now and the record to store before booting it: a slot on trial
// uses up one try; with no tries left the trial ends and Active boots again (the fallback).
func (r Record) Next() (Slot, Record, bool) {
	if r.Try == NoSlot || r.Try == r.Active {
		return r.Active, r, false
	}
	n := r
	if r.TriesLeft == 0 {
		n.Try, n.TrySHA256, n.TrySize = NoSlot, [32]byte{}, 0
		return r.Active, n, true
	}
	n.TriesLeft--
	return r.Try, n, true
}

// encode returns one copy of the record.
func (r Record) encode() []byte {
	b := make([]byte, SectorSize)
	copy(b, magic[:])
	binary.LittleEndian.PutUint32(b[8:], r.Seq)
	b[12], b[13], b[14] = byte(r.Active), byte(r.Try), r.TriesLeft
	copy(b[16:48], r.TrySHA256[:])
	binary.LittleEndian.PutUint64(b[48:], r.TrySize)
	binary.LittleEndian.PutUint32(b[SectorSize-4:], crc32.ChecksumIEEE(b[:SectorSize-4]))
	return b
}

func decode(b []byte) (Record, error) {
	if len(b) != SectorSize {
		return Record{}, fmt.Errorf("boot record: %d bytes, want %d", len(b), SectorSize)
	}
	if !bytes.Equal(b[:8], magic[:]) {
		return Record{}, errors.New("boot record: bad magic")
	}
	if crc32.ChecksumIEEE(b[:SectorSize-4]) != binary.LittleEndian.Uint32(b[SectorSize-4:]) {
		return Record{}, errors.New("boot record: bad checksum")
	}
	r := Record{Seq: binary.LittleEndian.Uint32(b[8:]), Active: Slot(b[12]), Try: Slot(b[13]), TriesLeft: b[14]}
	copy(r.TrySHA256[:], b[16:48])
	r.TrySize = binary.LittleEndian.Uint64(b[48:])
	if r.Active != SlotA && r.Active != SlotB {
		return Record{}, fmt.Errorf("boot record: active slot %q", byte(r.Active))
	}
	if r.Try != NoSlot && r.Try != SlotA && r.Try != SlotB {
		return Record{}, fmt.Errorf("boot record: trial slot %q", byte(r.Try))
	}
	return r, nil
}

// Device is where the record is kept (the boot state partition, or a file in tests).
type Device interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
}

// Read returns the newest valid copy of the record. With no valid copy it returns the default
// record (slot A active, nothing on trial) and an error saying why, so stage 1 can still boot.
func Read(d Device) (Record, error) {
	var best Record
	var found bool
	var errs []error
	for i := int64(0); i < 2; i++ {
		b := make([]byte, SectorSize)
		if _, err := d.ReadAt(b, i*SectorSize); err != nil {
			errs = append(errs, fmt.Errorf("copy %d: %w", i, err))
			continue
		}
		r, err := decode(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("copy %d: %w", i, err))
			continue
		}
		if !found || r.Seq > best.Seq {
			best, found = r, true
		}
	}
	if !found {
		return Record{Active: SlotA}, errors.Join(errs...)
	}
	return best, nil
}

// Write stores r over the older copy with the next sequence number and syncs; it returns the
// record as stored.
func Write(d Device, r Record) (Record, error) {
	cur, err := Read(d)
	slot := int64(0)
	if err == nil {
		r.Seq = cur.Seq + 1
		// The copy holding cur stays; the other one is overwritten.
		b := make([]byte, SectorSize)
		if _, rerr := d.ReadAt(b, 0); rerr == nil {
			if c0, derr := decode(b); derr == nil && c0.Seq == cur.Seq {
				slot = 1
			}
		}
	} else {
		r.Seq = 1
	}
	if _, err := d.WriteAt(r.encode(), slot*SectorSize); err != nil {
		return r, fmt.Errorf("write boot record: %w", err)
	}
	if err := d.Sync(); err != nil {
		return r, fmt.Errorf("sync boot record: %w", err)
	}
	return r, nil
}
