package target

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testSMBD is a real Samba server for tests, bound to 127.0.0.1 on a free port, all its state under
// t.TempDir(). Reusable by other tests in this package: startSMBD(t, shareDir) then use
// srv.spec("sub/dir"). User "root" (a unix user that always exists) with password testPassword.
type testSMBD struct {
	port  int
	share string
	dir   string
}

const testPassword = "S3cret-Pw-42"

func startSMBD(t *testing.T, shareDir string) *testSMBD {
	t.Helper()
	smbd, err := exec.LookPath("smbd")
	if err != nil {
		if os.Getenv("EVIDENCED_REQUIRE_TOOLS") == "1" {
			t.Fatal("smbd not installed")
		}
		t.Skip("smbd not installed")
	}
	tmp := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	for _, d := range []string{"state", "lock", "cache", "pid", "private", "ncalrpc", "log"} {
		os.MkdirAll(filepath.Join(tmp, d), 0o700)
	}
	conf := filepath.Join(tmp, "smb.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`[global]
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

[images]
path = %[3]s
read only = no
force user = root
`, port, tmp, shareDir)), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	add := exec.CommandContext(ctx, "smbpasswd", "-c", conf, "-a", "-s", "root")
	add.Stdin = strings.NewReader(testPassword + "\n" + testPassword + "\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("smbpasswd: %v: %s", err, out)
	}
	cmd := exec.Command(smbd, "--foreground", "--no-process-group", "--debug-stdout", "-s", conf)
	logf, _ := os.Create(filepath.Join(tmp, "smbd.out"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(tmp, "smbd.out"))
			t.Fatalf("smbd did not listen: %s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &testSMBD{port: port, share: "images", dir: shareDir}
}

func (s *testSMBD) spec(sub string) Spec {
	return Spec{Folder: "//127.0.0.1/" + s.share + "/" + sub, Login: "root", Password: testPassword,
		MountOptions: fmt.Sprintf("port=%d", s.port)}
}
