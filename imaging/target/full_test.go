package target

import (
	"bytes"
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
	// The partial file is kept, and it is exactly a prefix of what was written: several writes
	// are in flight, and one that failed below others that landed must not leave a hole of zeros
	// (a raw image would show them as the drive's data).
	kept, rerr := os.ReadFile(filepath.Join(mnt, "full", "big.raw"))
	if rerr != nil || len(kept) < 1<<20 || len(kept) > 16<<20 {
		t.Fatalf("the partial file is not kept on the share: %d bytes, %v", len(kept), rerr)
	}
	for off := 0; off < len(kept); off += len(buf) {
		if n := min(len(buf), len(kept)-off); !bytes.Equal(kept[off:off+n], buf[:n]) {
			t.Fatalf("the kept file (%d bytes) is not the written prefix: MiB %d differs (a hole?)", len(kept), off>>20)
		}
	}
	t.Logf("kept %d bytes, all of them as written", len(kept))
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
