package target

// The kernel CIFS client needs a kernel with the cifs module, which the test machines do not
// load. TestKernelCIFSInQEMU boots a Debian kernel under QEMU with this package's test binary as
// /init; inside, TestKernelCIFSGuest mounts a share of a real Samba server on the host (reached
// through QEMU's user network at 10.0.2.2) with OpenKernel and writes through it. Run it with
// `make qemu-test`, which fetches the kernel; `make test` skips it.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/internal/testenv"
)

// guestConfig is what the host tells the guest, in /cifs.json inside the initramfs (not on the
// kernel command line, where the password would show in the host's process list).
type guestConfig struct {
	Folder   string `json:"folder"`
	Login    string `json:"login"`
	Password string `json:"password"`
	Options  string `json:"options"`
	Modules  []string
}

// qemuModules are loaded in the guest, dependencies first: the virtio network card, cifs, and the
// crypto cifs asks the kernel for (loaded up front: there is no modprobe in the guest).
var qemuModules = []string{"virtio_pci", "virtio_net", "cifs", "cmac", "ccm", "gcm", "ctr", "ecb", "ghash-generic",
	"sha512_generic", "nls_utf8", "des_generic"}

func TestKernelCIFSInQEMU(t *testing.T) {
	kdir := os.Getenv("EVIDENCED_QEMU_KERNEL")
	if kdir == "" {
		t.Skip("EVIDENCED_QEMU_KERNEL is not set: run `make qemu-test`")
	}
	qemu := testenv.Tool(t, "qemu-system-x86_64")
	share := t.TempDir()
	srv := testenv.StartSMBD(t, share)
	tmp := t.TempDir()
	root := filepath.Join(tmp, "root")
	for _, d := range []string{"proc", "sys", "dev", "tmp", "modules"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "test", "-c", "-o", filepath.Join(root, "init"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build guest: %v\n%s", err, out)
	}
	vmlinuz, mods := testenv.KernelFiles(t, kdir, qemuModules)
	cfg := guestConfig{Folder: "//10.0.2.2/" + srv.Share + "/qemu/case1", Login: srv.User, Password: srv.Password,
		Options: fmt.Sprintf("port=%d", srv.Port)}
	for i, m := range mods {
		name := fmt.Sprintf("%02d-%s", i, filepath.Base(m))
		testenv.CopyFile(t, m, filepath.Join(root, "modules", name))
		cfg.Modules = append(cfg.Modules, "/modules/"+name)
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(root, "cifs.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(tmp, "initrd.cpio")
	testenv.PackInitramfs(t, root, initrd)
	args := []string{"-m", "512", "-nographic", "-no-reboot", "-kernel", vmlinuz, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet EVIDENCED_QEMU_GUEST=1 -- -test.run=^TestKernelCIFSGuest$ -test.v",
		"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"}
	// Software emulation: nested KVM on the test machines fails (unsupported MSRs, then a silent
	// hang), and TCG boots this kernel to /init in seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, qemu, args...).CombinedOutput()
	t.Logf("guest console:\n%s", out)
	if err != nil {
		t.Fatalf("qemu: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestKernelCIFSGuest")) {
		t.Fatal("the guest test did not pass")
	}
	// The guest wrote through the kernel client; the file on the share is what it says it wrote.
	m := guestMD5(out)
	got := testenv.FileMD5(t, filepath.Join(share, "qemu", "case1", "image.raw"))
	if m == "" || got != m {
		t.Fatalf("file on the share has MD5 %s, the guest wrote %s", got, m)
	}
	if bytes.Contains(out, []byte(srv.Password)) {
		t.Fatal("the password appeared on the guest console")
	}
}

// guestMD5 finds the MD5 the guest printed for what it wrote.
func guestMD5(b []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "KERNEL-CIFS md5="); i >= 0 && len(line) >= i+16+32 {
			return line[i+16 : i+16+32]
		}
	}
	return ""
}

// TestMain powers the QEMU guest off once the tests ran and printed their results.
func TestMain(m *testing.M) { testenv.GuestMain(m) }

// TestKernelCIFSGuest runs as /init inside the QEMU guest only.
func TestKernelCIFSGuest(t *testing.T) {
	var cfg guestConfig
	testenv.GuestConfig(t, "TestKernelCIFSInQEMU", "/cifs.json", &cfg)
	testenv.GuestInit(t, cfg.Modules)
	if _, err := os.ReadFile("/proc/filesystems"); err != nil || !kernelCIFSAvailable() {
		t.Fatal("cifs is not in /proc/filesystems after loading the module")
	}
	if err := ifUp("lo", nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := os.Stat("/sys/class/net/eth0"); err == nil {
			break
		}
		if i > 100 {
			t.Fatal("no eth0")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := ifUp("eth0", net.IPv4(10, 0, 2, 15)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	spec := Spec{Folder: cfg.Folder, Login: cfg.Login, Password: cfg.Password, MountOptions: cfg.Options}

	// A wrong password is refused with "access denied", without the password in the message.
	bad := spec
	bad.Password = "wrong-" + cfg.Password
	if _, err := Open(ctx, bad, Config{Client: "kernel"}); err == nil || !strings.Contains(err.Error(), "access denied") ||
		strings.Contains(err.Error(), bad.Password) {
		t.Fatalf("wrong password: %v", err)
	}
	// A share that does not exist is named.
	missing := spec
	missing.Folder = "//10.0.2.2/nosuchshare/x"
	if _, err := Open(ctx, missing, Config{Client: "kernel"}); err == nil || !strings.Contains(err.Error(), "nosuchshare") {
		t.Fatalf("missing share: %v", err)
	} else {
		t.Logf("missing share: %v", err)
	}
	tg, err := Open(ctx, spec, Config{Client: "auto"}) // auto picks the kernel client here
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if _, ok := tg.(*Kernel); !ok {
		t.Fatalf("auto chose %T, want the kernel client", tg)
	}
	f, err := tg.Create("image.raw")
	if err != nil {
		t.Fatal(err)
	}
	h := md5.New()
	buf := make([]byte, 1<<20)
	for i := 0; i < 16; i++ {
		for j := range buf {
			buf[j] = byte(i*7 + j*13)
		}
		h.Write(buf)
		if _, err := f.WriteAt(buf, int64(i)<<20); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if d := tg.Display("image.raw"); d != cfg.Folder+"/image.raw" {
		t.Errorf("display %s", d)
	}
	if free, err := tg.FreeSpace(); err != nil || free <= 0 {
		t.Errorf("free space %d, %v", free, err)
	}
	if err := tg.Close(); err != nil {
		t.Fatalf("unmount: %v", err)
	}
	fmt.Printf("KERNEL-CIFS md5=%s\n", hex.EncodeToString(h.Sum(nil)))
}

// ifUp sets an interface up, with an IPv4 address in 10.0.2.0/24 when ip is given.
func ifUp(name string, ip net.IP) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if ip != nil {
		for _, req := range []struct {
			op   uint
			addr net.IP
		}{{unix.SIOCSIFADDR, ip}, {unix.SIOCSIFNETMASK, net.IPv4(255, 255, 255, 0)}} {
			var ifr [40]byte
			copy(ifr[:], name)
			sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&ifr[16]))
			sa.Family = unix.AF_INET
			copy(sa.Addr[:], req.addr.To4())
			if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req.op), uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
				return fmt.Errorf("%s: ioctl %x: %v", name, req.op, e)
			}
		}
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s: get flags: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s: up: %w", name, err)
	}
	return nil
}
