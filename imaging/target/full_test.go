package target

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/internal/testenv"
)

// TestSMBShareFull points the share at a 16 MiB loop-mounted ext4 and writes past it: the error
// names the share and its free space, the partial file stays, and the session survives (a full
// disk is not a broken connection), so space freed on the share can be used at once.
func TestSMBShareFull(t *testing.T) {
	mnt := testenv.SmallFS(t, 16<<20)
	srv := testenv.StartSMBD(t, mnt)
	tg, err := Open(context.Background(), smbSpec(srv, "full"), Config{Client: "smb"})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	f, err := tg.Create("big.raw")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for i := 0; i < 32 && err == nil; i++ {
		_, err = f.Write(buf)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil || !strings.Contains(err.Error(), "//127.0.0.1/images") || !strings.Contains(err.Error(), "bytes free") {
		t.Fatalf("share full: %v", err)
	}
	t.Log(err)
	st, serr := os.Stat(filepath.Join(mnt, "full", "big.raw"))
	if serr != nil || st.Size() < 8<<20 {
		t.Fatalf("the partial file is not kept on the share: %v %v", st, serr)
	}
	if err := tg.Remove("big.raw"); err != nil {
		t.Fatalf("remove after a full share: %v", err)
	}
	if err := writeSmall(tg, "after.txt", []byte("still working")); err != nil {
		t.Fatalf("write after freeing space: %v", err)
	}
}

func writeSmall(tg Target, name string, b []byte) error {
	f, err := tg.Create(name)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
