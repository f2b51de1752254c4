package aff4

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/testenv"
)

// The fuzz targets give hostile containers to the AFF4 reader (zip directory, members, maps,
// bevies and their indexes) and hostile text to the Turtle parser: errors, never a panic or a hang.
// Seeds are small volumes written by this package with each compression, and the Turtle of the
// AFF4 reference images when EVIDENCED_AFF4_REF names them; inputs that once failed are kept in
// testdata/fuzz as regression cases.

// smallVolumes writes a few small volumes: 3 chunks of 4 KiB, part repetitive and part zero.
func smallVolumes(f *testing.F) [][]byte {
	data := make([]byte, 3*4096+100)
	for i := range data[:5000] {
		data[i] = byte(i * 31 / 7)
	}
	var out [][]byte
	for _, c := range []string{"lz4", "snappy", "deflate", "none"} {
		p := filepath.Join(f.TempDir(), c+".aff4")
		writeImage(f, bytes.NewReader(data), p, Options{Compression: c, ChunkSize: 4096, ChunksPerSegment: 2,
			Size: int64(len(data)), SectorSize: 512, CaseNumber: "C1", Model: "M", Serial: "S"})
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func FuzzAFF4(f *testing.F) {
	for _, b := range smallVolumes(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		defer testenv.NoHang(20 * time.Second)()
		v, err := Open(bytes.NewReader(in), int64(len(in)))
		if err != nil {
			return
		}
		defer v.Close()
		for _, im := range v.Images() {
			_ = im.Hashes()
			if r, err := im.Open(); err == nil {
				_, _ = io.Copy(io.Discard, io.NewSectionReader(r, 0, 16<<20))
			}
		}
		for _, urn := range v.ImageStreams() {
			_ = v.StreamHashes(urn)
			if r, n, err := v.OpenStream(urn); err == nil {
				_, _ = io.Copy(io.Discard, io.NewSectionReader(r, 0, min(n, 16<<20)))
			}
		}
	})
}

func FuzzTurtle(f *testing.F) {
	vols := smallVolumes(f)[:1]
	if d := os.Getenv("EVIDENCED_AFF4_REF"); d != "" {
		refs, _ := filepath.Glob(filepath.Join(d, "*", "*.aff4"))
		for _, p := range refs {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			vols = append(vols, b)
		}
	}
	for _, b := range vols {
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			f.Fatal(err)
		}
		for _, m := range zr.File {
			if m.Name == "information.turtle" {
				rc, err := m.Open()
				if err != nil {
					f.Fatal(err)
				}
				ttl, err := io.ReadAll(rc)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(string(ttl))
			}
		}
	}
	f.Add("@prefix aff4: <http://aff4.org/Schema#> .\n<aff4://x> a aff4:Image ; aff4:size \"12\"^^<http://www.w3.org/2001/XMLSchema#long> , 13 .\n")
	f.Fuzz(func(t *testing.T, in string) {
		defer testenv.NoHang(20 * time.Second)()
		_, _ = parseTurtle(in)
	})
}
