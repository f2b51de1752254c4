package linux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// The decoders below turn what a drive answers (ATA IDENTIFY DEVICE, SCSI INQUIRY and its VPD
// pages, READ CAPACITY(16), NVMe Identify) into identity fields. They are pure: the ioctl code is
// in sgio_linux.go. Drive answers are hostile input: short or malformed buffers give errors.

// ATAIdentity is what IDENTIFY DEVICE says.
type ATAIdentity struct {
	Model, Serial, Firmware string
	Sectors                 int64 // user-addressable sectors (LBA48 when supported, else LBA28)
	Logical, Physical       int   // sector sizes, bytes
	HPASupported            bool  // the Host Protected Area feature set (word 82 bit 10)
	HPAEnabled              bool  // word 85 bit 10
}

// ataString decodes an ATA string: each 16-bit word holds two characters, high byte first.
func ataString(b []byte) string {
	out := make([]byte, len(b))
	for i := 0; i+1 < len(b); i += 2 {
		out[i], out[i+1] = b[i+1], b[i]
	}
	return cleanString(out)
}

// cleanString trims padding (spaces, NULs) and refuses nothing: non-printable bytes become '?'
// so a broken drive still gets a (checkable) name.
func cleanString(b []byte) string {
	s := make([]byte, 0, len(b))
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			if c == 0 {
				c = ' '
			} else {
				c = '?'
			}
		}
		s = append(s, c)
	}
	return strings.Join(strings.Fields(string(s)), " ")
}

// ParseATAIdentify decodes a 512-byte IDENTIFY DEVICE block. The checksum (word 255) is checked
// when its signature byte says one is present.
func ParseATAIdentify(b []byte) (ATAIdentity, error) {
	if len(b) < 512 {
		return ATAIdentity{}, fmt.Errorf("ATA IDENTIFY: %d bytes, want 512", len(b))
	}
	b = b[:512]
	if b[510] == 0xa5 {
		var sum byte
		for _, c := range b {
			sum += c
		}
		if sum != 0 {
			return ATAIdentity{}, errors.New("ATA IDENTIFY: checksum mismatch")
		}
	}
	w := func(i int) uint16 { return binary.LittleEndian.Uint16(b[2*i:]) }
	if w(0)&0x8000 != 0 {
		return ATAIdentity{}, errors.New("ATA IDENTIFY: word 0 says this is not an ATA device (ATAPI?)")
	}
	id := ATAIdentity{
		Serial:   ataString(b[20:40]),
		Firmware: ataString(b[46:54]),
		Model:    ataString(b[54:94]),
		Logical:  512,
	}
	id.Sectors = int64(w(60)) | int64(w(61))<<16
	if w(83)&(1<<10) != 0 { // 48-bit address feature set
		id.Sectors = int64(w(100)) | int64(w(101))<<16 | int64(w(102))<<32 | int64(w(103))<<48
	}
	if id.Sectors < 0 {
		return ATAIdentity{}, errors.New("ATA IDENTIFY: sector count out of range")
	}
	id.Physical = id.Logical
	if w106 := w(106); w106&0xc000 == 0x4000 { // word valid
		if w106&(1<<12) != 0 { // logical sector longer than 256 words
			words := int(w(117)) | int(w(118))<<16
			if words < 256 || words > 32768 {
				return ATAIdentity{}, fmt.Errorf("ATA IDENTIFY: logical sector of %d words", words)
			}
			id.Logical = 2 * words
		}
		if w106&(1<<13) != 0 {
			id.Physical = id.Logical << (w106 & 0xf)
		}
	}
	id.HPASupported = w(82)&(1<<10) != 0
	id.HPAEnabled = w(85)&(1<<10) != 0
	return id, nil
}

// SCSIInquiry is the standard INQUIRY data evidenced uses.
type SCSIInquiry struct {
	DeviceType                int // peripheral device type: 0 = direct access block device
	Vendor, Product, Revision string
}

// ParseInquiry decodes standard INQUIRY data (at least 36 bytes).
func ParseInquiry(b []byte) (SCSIInquiry, error) {
	if len(b) < 36 {
		return SCSIInquiry{}, fmt.Errorf("SCSI INQUIRY: %d bytes, want at least 36", len(b))
	}
	if b[0]>>5 == 3 {
		return SCSIInquiry{}, errors.New("SCSI INQUIRY: no device on this LUN")
	}
	return SCSIInquiry{
		DeviceType: int(b[0] & 0x1f),
		Vendor:     cleanString(b[8:16]),
		Product:    cleanString(b[16:32]),
		Revision:   cleanString(b[32:36]),
	}, nil
}

// ParseVPD80 decodes the Unit Serial Number VPD page (0x80), as sysfs's vpd_pg80 holds it.
func ParseVPD80(b []byte) (string, error) {
	if len(b) < 4 {
		return "", fmt.Errorf("VPD page 0x80: %d bytes, want at least 4", len(b))
	}
	if b[1] != 0x80 {
		return "", fmt.Errorf("VPD page 0x80: page code is 0x%02x", b[1])
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if 4+n > len(b) {
		return "", fmt.Errorf("VPD page 0x80: length %d beyond the %d bytes returned", n, len(b)-4)
	}
	s := cleanString(b[4 : 4+n])
	if s == "" {
		return "", errors.New("VPD page 0x80: empty serial number")
	}
	return s, nil
}

// ParseReadCapacity16 decodes READ CAPACITY(16) data: the number of logical blocks, the logical
// and the physical block size.
func ParseReadCapacity16(b []byte) (blocks int64, logical, physical int, err error) {
	if len(b) < 14 {
		return 0, 0, 0, fmt.Errorf("READ CAPACITY(16): %d bytes, want at least 14", len(b))
	}
	last := binary.BigEndian.Uint64(b[0:8])
	logical = int(binary.BigEndian.Uint32(b[8:12]))
	if logical < 512 || logical > 65536 || logical&(logical-1) != 0 {
		return 0, 0, 0, fmt.Errorf("READ CAPACITY(16): block length %d", logical)
	}
	if last >= 1<<62 {
		return 0, 0, 0, fmt.Errorf("READ CAPACITY(16): last LBA %d out of range", last)
	}
	exp := b[13] & 0xf
	return int64(last) + 1, logical, logical << exp, nil
}

// NVMeController is what Identify Controller (CNS 1) says.
type NVMeController struct {
	Serial, Model, Firmware string
}

// ParseNVMeIdentifyController decodes the 4096-byte Identify Controller data structure.
func ParseNVMeIdentifyController(b []byte) (NVMeController, error) {
	if len(b) < 4096 {
		return NVMeController{}, fmt.Errorf("NVMe Identify Controller: %d bytes, want 4096", len(b))
	}
	c := NVMeController{
		Serial:   cleanString(b[4:24]),
		Model:    cleanString(b[24:64]),
		Firmware: cleanString(b[64:72]),
	}
	if c.Serial == "" && c.Model == "" {
		return NVMeController{}, errors.New("NVMe Identify Controller: no serial and no model")
	}
	return c, nil
}

// ParseNVMeIdentifyNamespace decodes the 4096-byte Identify Namespace data structure (CNS 0): the
// size in logical blocks and the block size of the format in use.
func ParseNVMeIdentifyNamespace(b []byte) (blocks int64, blockSize int, err error) {
	if len(b) < 4096 {
		return 0, 0, fmt.Errorf("NVMe Identify Namespace: %d bytes, want 4096", len(b))
	}
	nsze := binary.LittleEndian.Uint64(b[0:8])
	nlbaf := int(b[25])
	flbas := int(b[26]&0xf) | int(b[26]>>5&0x3)<<4 // bits 6:5 extend the index (NVMe 2.0)
	if flbas > nlbaf || flbas >= 64 {
		return 0, 0, fmt.Errorf("NVMe Identify Namespace: format %d of %d", flbas, nlbaf+1)
	}
	lbads := b[128+4*flbas+2]
	if lbads < 9 || lbads > 16 {
		return 0, 0, fmt.Errorf("NVMe Identify Namespace: block size 2^%d", lbads)
	}
	if nsze >= 1<<62>>lbads {
		return 0, 0, fmt.Errorf("NVMe Identify Namespace: size %d blocks out of range", nsze)
	}
	return int64(nsze), 1 << lbads, nil
}

// ATA PASS-THROUGH(16) CDBs (SAT-4 §12.2.2), built here and sent in sgio_linux.go.

// IdentifyCDB is ATA PASS-THROUGH(16) carrying IDENTIFY DEVICE (0xEC): PIO data-in, one 512-byte
// block, the transfer length in the sector count field.
func IdentifyCDB() [16]byte {
	return [16]byte{
		0:  0x85,
		1:  4 << 1,          // protocol 4: PIO data-in
		2:  1<<3 | 1<<2 | 2, // T_DIR from device, BYT_BLOK blocks, T_LENGTH in the sector count
		6:  1,               // one block
		14: 0xec,
	}
}

// ReadNativeMaxCDB is ATA PASS-THROUGH(16) carrying READ NATIVE MAX ADDRESS EXT (0x27): non-data,
// with CK_COND so the device's registers (holding the native max LBA) come back as sense data.
func ReadNativeMaxCDB() [16]byte {
	return [16]byte{
		0:  0x85,
		1:  3<<1 | 1, // protocol 3: non-data; EXTEND (48-bit command)
		2:  1 << 5,   // CK_COND: return the ATA registers
		13: 1 << 6,   // device: LBA mode
		14: 0x27,
	}
}

// ataRegs are the ATA registers an ATA PASS-THROUGH with CK_COND returns in its ATA Status
// Return sense descriptor (type 0x09).
type ataRegs struct {
	errReg, status byte
	lbaLow, lbaMid byte // LBA 7:0 and 15:8
	lba            int64
}

func parseATAReturn(sense []byte) (ataRegs, error) {
	if len(sense) < 8 {
		return ataRegs{}, fmt.Errorf("ATA return: %d bytes of sense", len(sense))
	}
	if sense[0]&0x7f != 0x72 {
		return ataRegs{}, fmt.Errorf("ATA return: sense format 0x%02x, want descriptor format 0x72", sense[0])
	}
	n := min(8+int(sense[7]), len(sense))
	for i := 8; i+1 < n; {
		typ, l := sense[i], int(sense[i+1])
		if typ == 0x09 && l >= 12 && i+14 <= n {
			d := sense[i:]
			r := ataRegs{errReg: d[3], status: d[13]}
			r.lba = int64(d[7]) | int64(d[9])<<8 | int64(d[11])<<16 // LBA 7:0, 15:8, 23:16
			if d[2]&1 != 0 {                                        // EXTEND: high bytes valid
				r.lba |= int64(d[6])<<24 | int64(d[8])<<32 | int64(d[10])<<40
			}
			return r, nil
		}
		i += 2 + l
	}
	return ataRegs{}, errors.New("ATA return: no ATA Status Return descriptor in the sense data")
}

// ParseNativeMax decodes the sense data of READ NATIVE MAX ADDRESS EXT: the native max LBA. The
// number of native sectors is that LBA + 1.
func ParseNativeMax(sense []byte) (int64, error) {
	r, err := parseATAReturn(sense)
	if err != nil {
		return 0, err
	}
	if r.status&0x01 != 0 { // ERR
		return 0, fmt.Errorf("ATA return: command aborted (error 0x%02x)", r.errReg)
	}
	return r.lba, nil
}

// SMARTStatusCDB is ATA PASS-THROUGH(16) carrying SMART RETURN STATUS (B0h/DAh): non-data, with
// CK_COND; the drive answers in LBA 15:8 and 23:16.
func SMARTStatusCDB() [16]byte {
	return [16]byte{
		0:  0x85,
		1:  3 << 1, // protocol 3: non-data
		2:  1 << 5, // CK_COND
		4:  0xda,   // feature: SMART RETURN STATUS
		10: 0x4f,   // LBA 15:8
		12: 0xc2,   // LBA 23:16
		14: 0xb0,
	}
}

// ParseSMARTStatus decodes the answer to SMART RETURN STATUS: true when the drive says its
// thresholds are not exceeded (4Fh/C2h), false when they are (F4h/2Ch).
func ParseSMARTStatus(sense []byte) (bool, error) {
	r, err := parseATAReturn(sense)
	if err != nil {
		return false, err
	}
	if r.status&0x01 != 0 {
		return false, fmt.Errorf("SMART RETURN STATUS aborted (error 0x%02x): SMART disabled or unsupported", r.errReg)
	}
	switch mid, high := byte(r.lba>>8), byte(r.lba>>16); {
	case mid == 0x4f && high == 0xc2:
		return true, nil
	case mid == 0xf4 && high == 0x2c:
		return false, nil
	default:
		return false, fmt.Errorf("SMART RETURN STATUS: unexpected LBA registers %02x/%02x", mid, high)
	}
}
