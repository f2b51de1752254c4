package target

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSMBTarget(t *testing.T) {
	dir := t.TempDir()
	srv := startSMBD(t, dir)
	ctx := context.Background()
	tg, err := Open(ctx, srv.spec(`a/b\c`), Config{Client: "smb"})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if got := tg.Display("x.E01"); got != "//127.0.0.1/images/a/b/c/x.E01" {
		t.Fatalf("display %q", got)
	}
	f, err := tg.Create("x.E01")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("hello"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Create("x.E01"); !errors.Is(err, ErrExist) {
		t.Fatalf("create over existing: %v", err)
	}
	if n, err := tg.Stat("x.E01"); err != nil || n != 5 {
		t.Fatalf("stat %d %v", n, err)
	}
	if err := tg.Truncate("x.E01", 2); err != nil {
		t.Fatal(err)
	}
	if err := tg.MkdirAll("r/s/t"); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "a/b/c/r/s/t")); err != nil || !st.IsDir() {
		t.Fatal("mkdirall", err)
	}
	if err := tg.Rename("x.E01", "r/y.E01"); err != nil {
		t.Fatal(err)
	}
	rf, err := tg.Open("r/y.E01")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2)
	if _, err := rf.ReadAt(b, 0); err != nil && err != io.EOF || string(b) != "he" || rf.Size() != 2 {
		t.Fatalf("read back %q %v", b, err)
	}
	rf.Close()
	if err := tg.Remove("r/y.E01"); err != nil {
		t.Fatal(err)
	}
	if free, err := tg.FreeSpace(); err != nil || free <= 0 {
		t.Fatalf("free %d %v", free, err)
	}
}

func corpus(t *testing.T) []byte {
	if p := os.Getenv("EVIDENCED_CORPUS"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := make([]byte, 256<<20)
	rand.Read(b)
	return b
}

func writeAll(t *testing.T, tg Target, name string, data []byte) float64 {
	start := time.Now()
	f, err := tg.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 4 << 20 {
		if _, err := f.Write(data[off:min(off+4<<20, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return float64(len(data)) / 1e6 / time.Since(start).Seconds()
}

func TestSMBThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	data := corpus(t)
	want := sha1.Sum(data)
	dir := t.TempDir()
	srv := startSMBD(t, dir)
	tg, err := Open(context.Background(), srv.spec("big"), Config{Client: "smb"})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	smbRate := writeAll(t, tg, "img.raw", data)
	got, err := os.ReadFile(filepath.Join(dir, "big", "img.raw"))
	if err != nil || sha1.Sum(got) != want {
		t.Fatalf("SHA-1 mismatch after SMB write (%v)", err)
	}
	got = nil
	ldir := t.TempDir()
	lt, err := OpenLocal(ldir, []string{ldir})
	if err != nil {
		t.Fatal(err)
	}
	localRate := writeAll(t, lt, "img.raw", data)
	t.Logf("SMB %.0f MB/s, local %.0f MB/s, ratio %.2f", smbRate, localRate, smbRate/localRate)
}

func TestSMBErrors(t *testing.T) {
	srv := startSMBD(t, t.TempDir())
	ctx := context.Background()
	sp := srv.spec("x")
	sp.Password = "Wrong-Secret-99"
	_, err := Open(ctx, sp, Config{Client: "smb"})
	if err == nil || !strings.Contains(err.Error(), "access denied") || strings.Contains(err.Error(), sp.Password) {
		t.Fatalf("wrong password: %v", err)
	}
	sp = srv.spec("x")
	sp.Folder = "//127.0.0.1/nosuchshare/x"
	_, err = Open(ctx, sp, Config{Client: "smb"})
	if err == nil || !strings.Contains(err.Error(), "nosuchshare") {
		t.Fatalf("missing share: %v", err)
	}
	for _, c := range []Spec{
		{Folder: "//no-such-host.invalid/s/x", Login: "u", Password: "p"},
		{Folder: "//127.0.0.1/s/x", MountOptions: "port=1", Login: "u", Password: "p"},
	} {
		start := time.Now()
		_, err := Open(ctx, c, Config{Client: "smb"})
		if err == nil || time.Since(start) > 8*time.Second {
			t.Fatalf("%s: %v after %v", c.Folder, err, time.Since(start))
		}
		t.Logf("%s: %v", c.Folder, err)
	}
}

func TestUNCAndOptions(t *testing.T) {
	for _, c := range []struct {
		in, opts, server, share, dir string
		port                         int
		bad                          bool
	}{
		{"//srv/share/sub/dir", "", "srv", "share", "sub/dir", 445, false},
		{`\\srv\share\sub\dir`, "", "srv", "share", "sub/dir", 445, false},
		{"//srv/share", "port=4455,vers=3.0", "srv", "share", "", 4455, false},
		{"//srv", "", "", "", "", 0, true},
		{"//srv/share", "port=x", "", "", "", 0, true},
		{"//srv/share/../x", "", "", "", "", 0, true},
	} {
		u, err := ParseUNC(c.in, c.opts)
		if c.bad != (err != nil) || !c.bad && (u.Server != c.server || u.Share != c.share || u.Dir != c.dir || u.Port != c.port) {
			t.Errorf("%q: %+v %v", c.in, u, err)
		}
	}
	for _, m := range []string{"", "auto", "ipv4", "none"} {
		if _, err := ResolveServer(nil, "127.0.0.1", m); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
	if _, err := ResolveServer(nil, "host", "bogus"); err == nil {
		t.Error("bogus dnsLookup accepted")
	}
	if _, err := ResolveServer(nil, "host", "none"); err == nil {
		t.Error("none with a name accepted")
	}
	o, err := BuildKernelOptions("10.0.0.1", Spec{Login: "u", Domain: "D", Password: "pw-XYZ", MountOptions: "port=4455,vers=3.0,password=evil"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(o.Data, "password=pw-XYZ") || strings.Contains(o.String(), "pw-XYZ") || strings.Contains(fmt.Sprint(o), "pw-XYZ") || strings.Contains(o.Data, "evil") {
		t.Fatalf("options %q / %s", o.Data, o)
	}
	if !strings.Contains(o.Data, "username=u") || !strings.Contains(o.Data, "domain=D") || !strings.Contains(o.Data, "port=4455") {
		t.Fatal(o.Data)
	}
	_ = bytes.Equal
}
