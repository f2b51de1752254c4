package target

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Kernel is a share mounted with the kernel cifs client on a private temporary mount point; below
// it, it behaves as a Local folder, but paths are shown as the UNC path.
type Kernel struct {
	*Local
	unc   UNC
	mount string
}

// OpenKernel mounts //server/share (never the password on argv: it goes in the mount(2) data).
func OpenKernel(ctx context.Context, spec Spec) (*Kernel, error) {
	u, err := ParseUNC(spec.Folder, spec.MountOptions)
	if err != nil {
		return nil, err
	}
	ip, err := ResolveServer(func(n, h string) ([]net.IP, error) {
		return net.DefaultResolver.LookupIP(ctx, n, h)
	}, u.Server, spec.DNSLookup)
	if err != nil {
		return nil, err
	}
	opts, err := BuildKernelOptions(ip, spec)
	if err != nil {
		return nil, err
	}
	mp, err := os.MkdirTemp("", "evidenced-cifs-")
	if err != nil {
		return nil, err
	}
	src := "//" + u.Server + "/" + u.Share
	if err := unix.Mount(src, mp, "cifs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts.Data); err != nil {
		os.Remove(mp)
		switch err {
		case unix.EACCES, unix.EPERM:
			return nil, fmt.Errorf("mount %s: access denied for user %q", src, spec.Login)
		case unix.ENOENT:
			return nil, fmt.Errorf("mount %s: share %q does not exist", src, u.Share)
		}
		return nil, fmt.Errorf("mount %s (options %s): %v", src, opts, err)
	}
	dir := mp
	if u.Dir != "" {
		dir = mp + "/" + u.Dir
	}
	l, err := OpenLocal(dir, []string{mp})
	if err != nil {
		unix.Unmount(mp, 0)
		os.Remove(mp)
		return nil, err
	}
	return &Kernel{Local: l, unc: u, mount: mp}, nil
}

func (k *Kernel) Display(name string) string { return k.unc.Display(name) }

// Close unmounts; a lazy detach follows if the share is still busy so the daemon never hangs here.
func (k *Kernel) Close() error {
	k.Local.Close() // its descriptor would keep the share busy
	if err := unix.Unmount(k.mount, 0); err != nil {
		if err2 := unix.Unmount(k.mount, unix.MNT_DETACH); err2 != nil {
			return fmt.Errorf("unmount %s: %v", k.unc.Display(""), err)
		}
	}
	return os.Remove(k.mount)
}

// kernelCIFSAvailable: the kernel client needs the cifs file system and root.
func kernelCIFSAvailable() bool {
	b, err := os.ReadFile("/proc/filesystems")
	return err == nil && strings.Contains(string(b), "\tcifs") && os.Geteuid() == 0
}
