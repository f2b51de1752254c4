package slots

import (
	"os"

	"golang.org/x/sys/unix"
)

// dropCache asks the kernel to forget f's cached pages so a read-back reads the device.
func dropCache(f *os.File) error {
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
