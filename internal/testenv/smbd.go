package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SMBD is a real Samba server for tests: bound to 127.0.0.1 on a free port, all its state under
// t.TempDir(), one read-write share named Share over Dir. User is "root" (a unix user that always
// exists; smbd maps it with force user) and Password is random per server and URL- and JSON-safe,
// so a test can search logs, records and files for it, in any of those encodings, without false
// hits.
type SMBD struct {
	Port     int
	Share    string
	User     string
	Password string
	Dir      string
	// Log is smbd's own output, for failure messages.
	Log string
}

// StartSMBD starts smbd over shareDir and stops it (with every child it forked) when the test ends.
func StartSMBD(t testing.TB, shareDir string) *SMBD {
	t.Helper()
	smbd := Tool(t, "smbd")
	smbpasswd := Tool(t, "smbpasswd")
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	s := &SMBD{Share: "images", User: "root", Password: "Pw-" + hex.EncodeToString(rnd[:]) + "-x", Dir: shareDir}
	tmp := t.TempDir()
	s.Log = filepath.Join(tmp, "smbd.out")
	for _, d := range []string{"state", "lock", "cache", "pid", "private", "ncalrpc", "log"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// A port taken from the kernel and released can be grabbed by someone else before smbd binds
	// it; a few attempts make that race harmless.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s.Port = port
		conf := filepath.Join(tmp, "smb.conf")
		if err := os.WriteFile(conf, []byte(s.config(tmp)), 0o644); err != nil {
			t.Fatal(err)
		}
		if attempt == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			// The password goes on stdin: never on a command line other processes can read.
			add := exec.CommandContext(ctx, smbpasswd, "-c", conf, "-a", "-s", s.User)
			add.Stdin = strings.NewReader(s.Password + "\n" + s.Password + "\n")
			out, err := add.CombinedOutput()
			cancel()
			if err != nil {
				t.Fatalf("smbpasswd: %v: %s", err, out)
			}
		}
		if err := s.run(t, smbd, conf); err == nil {
			return s
		} else if attempt == 2 {
			t.Fatal(err)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *SMBD) config(tmp string) string {
	return fmt.Sprintf(`[global]
workgroup = TEST
server role = standalone server
smb ports = %d
interfaces = 127.0.0.1
bind interfaces only = yes
state directory = %[2]s/state
lock directory = %[2]s/lock
cache directory = %[2]s/cache
pid directory = %[2]s/pid
private dir = %[2]s/private
ncalrpc dir = %[2]s/ncalrpc
log file = %[2]s/log/log.%%m
passdb backend = tdbsam:%[2]s/private/passdb.tdb
server min protocol = SMB2
disable netbios = yes
load printers = no
printing = bsd
printcap name = /dev/null
disable spoolss = yes
map to guest = never

[%[4]s]
path = %[3]s
read only = no
force user = root
`, s.Port, tmp, s.Dir, s.Share)
}

// run starts smbd and waits until it accepts connections.
func (s *SMBD) run(t testing.TB, smbd, conf string) error {
	t.Helper()
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(smbd, "--foreground", "--no-process-group", "--debug-stdout", "-s", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so the cleanup also ends the per-connection children it forks.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start smbd: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		logf.Close()
	}
	addr := fmt.Sprintf("127.0.0.1:%d", s.Port)
	for deadline := time.Now().Add(15 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			t.Cleanup(stop)
			return nil
		}
		select {
		case <-exited:
			stop()
			b, _ := os.ReadFile(s.Log)
			return fmt.Errorf("smbd exited before listening on %s: %s", addr, tail(b))
		default:
		}
		if time.Now().After(deadline) {
			stop()
			b, _ := os.ReadFile(s.Log)
			return fmt.Errorf("smbd did not listen on %s: %s", addr, tail(b))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(b []byte) []byte {
	if len(b) > 4000 {
		return b[len(b)-4000:]
	}
	return b
}

// Folder is the UNC path of sub inside the share, as the API takes it: //127.0.0.1/images/sub.
func (s *SMBD) Folder(sub string) string {
	f := "//127.0.0.1/" + s.Share
	if sub = strings.Trim(sub, `/\`); sub != "" {
		f += "/" + sub
	}
	return f
}

// MountOptions carries the server's port the way the API does: port=N.
func (s *SMBD) MountOptions() string { return fmt.Sprintf("port=%d", s.Port) }

// Addr is the server's TCP address.
func (s *SMBD) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// SmallFS mounts a fresh ext4 file system of size bytes (loop device) on a temporary folder and
// returns the folder: a share on it fills up quickly. It needs root and loop devices, so it skips
// where those are missing (containers), even under EVIDENCED_REQUIRE_TOOLS.
func SmallFS(t testing.TB, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop mount needs root")
	}
	mkfs := Tool(t, "mkfs.ext4")
	tmp := t.TempDir()
	img, mnt := filepath.Join(tmp, "fs.img"), filepath.Join(tmp, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Truncate(size)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skip("loop mount impossible here: ", strings.TrimSpace(string(out)))
	}
	// Registered after t.TempDir, so it runs before the temporary folder is removed.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			exec.Command("umount", "-l", mnt).Run()
			t.Logf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}
