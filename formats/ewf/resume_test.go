package ewf

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckpointResume(t *testing.T) {
	data := mixedData(6 << 20)
	base := filepath.Join(t.TempDir(), "img")
	opt := Options{Metadata: testMeta(), Compression: CompressFast, MediaSize: int64(len(data)), SegmentSize: 1 << 20}
	w, err := NewWriter(osCreate, base, opt)
	if err != nil {
		t.Fatal(err)
	}
	half := 3<<20 + 5*w.ChunkSize()
	if _, err := w.Write(data[:half]); err != nil {
		t.Fatal(err)
	}
	w.AddReadError(10, 2)
	st, err := w.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(st)
	var st2 State
	if err := json.Unmarshal(js, &st2); err != nil {
		t.Fatal(err)
	}
	// Simulate a power loss after the checkpoint: more chunks reach the disk, no Close.
	w.Write(data[half : half+40*w.ChunkSize()])
	w.bw.Flush()
	w.f.Close()

	w2, err := Resume(osCreate, func(name string) (File, error) { return os.OpenFile(name, os.O_WRONLY, 0) }, os.Truncate, base, opt, st2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Write(data[half:]); err != nil {
		t.Fatal(err)
	}
	m5, s1 := hashes(data)
	w2.SetHash("MD5", mustHex(m5))
	w2.SetHash("SHA1", mustHex(s1))
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	got, r := readAll(t, base+".E01")
	if !bytes.Equal(got, data) {
		t.Fatal("resumed image differs from source")
	}
	if e := r.ReadErrors(); len(e) != 1 || e[0] != (SectorRange{10, 2}) {
		t.Fatalf("ReadErrors %v", e)
	}
	ewfverify(t, base+".E01", m5, s1)
}

func mustHex(s string) []byte {
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			if c >= 'a' {
				v |= byte(c-'a') + 10
			} else {
				v |= byte(c - '0')
			}
		}
		b[i] = v
	}
	return b
}
