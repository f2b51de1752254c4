// Package linux is the appliance's real board (board file kind "linux"): ports are attach points
// in the kernel's device tree (udev ID_PATH form), drives are the block devices the kernel shows
// there, hot-plug comes from uevents (go-udev, the "kernel" netlink source where no udevd runs),
// port power from sysfs GPIO lines found by chip label.
//
// A drive on a source port is write-blocked in the kernel (BLKROSET on the disk and each
// partition, checked with BLKROGET) as soon as its uevent arrives, before identification opens it,
// and it is read with O_DIRECT through a Reader that has no write method.
//
// The parts that only interpret bytes — the ID_PATH computation from sysfs (through an fs.FS, so a
// fake tree tests it), the ATA IDENTIFY, SCSI INQUIRY/VPD and NVMe Identify decoders — are pure
// and apart from the ioctl code (*_linux.go).
package linux
