package linux

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The ioctls evidenced sends to drives: SG_IO (SCSI commands and ATA PASS-THROUGH), the NVMe admin
// command, the block layer's read-only flag, the SCSI device reset.

const (
	sgIO             = 0x2285     // SG_IO
	sgSCSIReset      = 0x2284     // SG_SCSI_RESET
	sgSCSIResetDev   = 1          // SG_SCSI_RESET_DEVICE
	sgDxferFromDev   = -3         // SG_DXFER_FROM_DEV
	sgDxferNone      = -1         // SG_DXFER_NONE
	nvmeIoctlAdmin   = 0xc0484e41 // NVME_IOCTL_ADMIN_CMD
	nvmeAdminIdentfy = 0x06
	sgTimeoutMs      = 10000
)

// sgIOHdr is struct sg_io_hdr (scsi/sg.h), amd64/arm64 layout.
type sgIOHdr struct {
	interfaceID    int32
	dxferDirection int32
	cmdLen         uint8
	mxSbLen        uint8
	iovecCount     uint16
	dxferLen       uint32
	dxferp         uintptr
	cmdp           uintptr
	sbp            uintptr
	timeout        uint32
	flags          uint32
	packID         int32
	usrPtr         uintptr
	status         uint8
	maskedStatus   uint8
	msgStatus      uint8
	sbLenWr        uint8
	hostStatus     uint16
	driverStatus   uint16
	resid          int32
	duration       uint32
	info           uint32
}

// sgCommand sends a SCSI command through SG_IO. It returns the sense data when the device reports
// CHECK CONDITION (wantSense makes that not an error: ATA PASS-THROUGH with CK_COND returns its
// registers there).
func sgCommand(f *os.File, cdb []byte, data []byte, wantSense bool) (sense []byte, err error) {
	sb := make([]byte, 64)
	h := sgIOHdr{
		interfaceID:    'S',
		dxferDirection: sgDxferNone,
		cmdLen:         uint8(len(cdb)),
		mxSbLen:        uint8(len(sb)),
		cmdp:           uintptr(unsafe.Pointer(&cdb[0])),
		sbp:            uintptr(unsafe.Pointer(&sb[0])),
		timeout:        sgTimeoutMs,
	}
	if len(data) > 0 {
		h.dxferDirection = sgDxferFromDev
		h.dxferLen = uint32(len(data))
		h.dxferp = uintptr(unsafe.Pointer(&data[0]))
	}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), sgIO, uintptr(unsafe.Pointer(&h)))
	runtime.KeepAlive(cdb)
	runtime.KeepAlive(data)
	runtime.KeepAlive(sb)
	if errno != 0 {
		return nil, fmt.Errorf("SG_IO 0x%02x: %w", cdb[0], errno)
	}
	sense = sb[:h.sbLenWr]
	if h.hostStatus != 0 || h.driverStatus&^0x08 != 0 { // 0x08 = DRIVER_SENSE
		return sense, fmt.Errorf("SG_IO 0x%02x: host status 0x%x, driver status 0x%x", cdb[0], h.hostStatus, h.driverStatus)
	}
	if h.status != 0 && !(wantSense && h.maskedStatus == 1) { // CHECK CONDITION
		return sense, fmt.Errorf("SG_IO 0x%02x: SCSI status 0x%02x, sense % x", cdb[0], h.status, sense)
	}
	return sense, nil
}

// ataIdentify sends IDENTIFY DEVICE through ATA PASS-THROUGH(16).
func ataIdentify(f *os.File) (ATAIdentity, error) {
	buf := make([]byte, 512)
	cdb := IdentifyCDB()
	if _, err := sgCommand(f, cdb[:], buf, false); err != nil {
		return ATAIdentity{}, err
	}
	return ParseATAIdentify(buf)
}

// ataNativeMax asks READ NATIVE MAX ADDRESS EXT: the number of sectors the drive has with no HPA.
func ataNativeMax(f *os.File) (int64, error) {
	cdb := ReadNativeMaxCDB()
	sense, err := sgCommand(f, cdb[:], nil, true)
	if err != nil {
		return 0, err
	}
	lba, err := ParseNativeMax(sense)
	if err != nil {
		return 0, err
	}
	return lba + 1, nil
}

// scsiInquiry sends INQUIRY and INQUIRY VPD 0x80 (unit serial number).
func scsiInquiry(f *os.File) (SCSIInquiry, string, error) {
	buf := make([]byte, 96)
	if _, err := sgCommand(f, []byte{0x12, 0, 0, 0, byte(len(buf)), 0}, buf, false); err != nil {
		return SCSIInquiry{}, "", err
	}
	inq, err := ParseInquiry(buf)
	if err != nil {
		return SCSIInquiry{}, "", err
	}
	vpd := make([]byte, 252)
	if _, err := sgCommand(f, []byte{0x12, 1, 0x80, 0, byte(len(vpd)), 0}, vpd, false); err != nil {
		return inq, "", nil // VPD 0x80 is optional (many USB bridges lack it)
	}
	serial, _ := ParseVPD80(vpd)
	return inq, serial, nil
}

// nvmeAdminCmd is struct nvme_admin_cmd (linux/nvme_ioctl.h).
type nvmeAdminCmd struct {
	opcode      uint8
	flags       uint8
	rsvd1       uint16
	nsid        uint32
	cdw2, cdw3  uint32
	metadata    uint64
	addr        uint64
	metadataLen uint32
	dataLen     uint32
	cdw10       uint32
	cdw11       uint32
	cdw12       uint32
	cdw13       uint32
	cdw14       uint32
	cdw15       uint32
	timeoutMs   uint32
	result      uint32
}

// nvmeIdentify sends an Identify admin command (cns 1 = controller, 0 = namespace nsid).
func nvmeIdentify(f *os.File, cns, nsid uint32) ([]byte, error) {
	buf := make([]byte, 4096)
	c := nvmeAdminCmd{
		opcode:    nvmeAdminIdentfy,
		nsid:      nsid,
		addr:      uint64(uintptr(unsafe.Pointer(&buf[0]))),
		dataLen:   uint32(len(buf)),
		cdw10:     cns,
		timeoutMs: sgTimeoutMs,
	}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), nvmeIoctlAdmin, uintptr(unsafe.Pointer(&c)))
	runtime.KeepAlive(buf)
	if errno != 0 {
		return nil, fmt.Errorf("NVMe identify (cns %d): %w", cns, errno)
	}
	return buf, nil
}

// setReadOnly sets or clears the block layer's read-only flag of a block device and reads it back.
// With it set, the kernel refuses writes through every descriptor (EPERM or EROFS), including
// descriptors opened for writing before.
func setReadOnly(devnode string, ro bool) error {
	f, err := os.OpenFile(devnode, os.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("write-block %s: %w", devnode, err)
	}
	defer f.Close()
	v := 0
	if ro {
		v = 1
	}
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.BLKROSET, v); err != nil {
		return fmt.Errorf("BLKROSET %d on %s: %w", v, devnode, err)
	}
	got, err := readOnly(f)
	if err != nil {
		return fmt.Errorf("BLKROGET on %s: %w", devnode, err)
	}
	if got != ro {
		return fmt.Errorf("%s: BLKROGET says read-only=%v after BLKROSET %d", devnode, got, v)
	}
	return nil
}

func readOnly(f *os.File) (bool, error) {
	v, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKROGET)
	return v != 0, err
}

// scsiReset asks the SCSI midlayer for a device reset (the first step of unfreezing a drive).
func scsiReset(devnode string) error {
	f, err := os.OpenFile(devnode, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("SCSI reset %s: %w", devnode, err)
	}
	defer f.Close()
	if err := unix.IoctlSetPointerInt(int(f.Fd()), sgSCSIReset, sgSCSIResetDev); err != nil {
		return fmt.Errorf("SG_SCSI_RESET on %s: %w", devnode, err)
	}
	return nil
}

var errNotSupported = errors.New("not supported by this device")
