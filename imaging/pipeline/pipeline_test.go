package pipeline

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/evidenced/evidenced/formats/digest"
	"github.com/evidenced/evidenced/formats/raw"
	"github.com/evidenced/evidenced/imaging/source"
)

// memAt is an in-memory io.WriterAt that can be slowed down.
type memAt struct {
	mu    sync.Mutex
	buf   []byte
	delay time.Duration
}

func (m *memAt) WriteAt(p []byte, off int64) (int, error) {
	if m.delay > 0 {
		time.Sleep(m.delay)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if need := int(off) + len(p); need > len(m.buf) {
		m.buf = append(m.buf, make([]byte, need-len(m.buf))...)
	}
	copy(m.buf[off:], p)
	return len(p), nil
}

// badReader fails reads that touch given sectors, like a drive with bad sectors.
type badReader struct {
	data []byte
	bad  map[int64]bool
	gone bool
}

func (r *badReader) ReadAt(p []byte, off int64) (int, error) {
	if r.gone {
		return 0, errGone
	}
	for i := int64(0); i < int64(len(p)); i += 512 {
		if r.bad[(off+i)/512] {
			copy(p, r.data[off:off+i])
			return int(i), fmt.Errorf("medium error at LBA %d", (off+i)/512)
		}
	}
	n := copy(p, r.data[off:])
	return n, nil
}

var errGone = errors.New("gone")

func random(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sums(b []byte) (string, string) {
	m, s := md5.Sum(b), sha1.Sum(b)
	return hex.EncodeToString(m[:]), hex.EncodeToString(s[:])
}

func TestRunRawHashesAndOrder(t *testing.T) {
	for _, size := range []int{0, 512, 65 * 512, 1<<20 + 512, 5<<20 + 3*512} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := random(t, size)
			out := &memAt{}
			src := source.New(bytes.NewReader(data), int64(size), source.Config{BlockSize: 256 << 10, Depth: 3})
			res, err := Run(context.Background(), src, raw.NewWriter(out, 32<<10), Config{Hashes: []digest.Name{digest.MD5, digest.SHA1, digest.SHA256}})
			if err != nil {
				t.Fatal(err)
			}
			m, s := sums(data)
			if res.Hashes["MD5"] != m || res.Hashes["SHA1"] != s || len(res.Hashes["SHA256"]) != 64 {
				t.Fatalf("hashes %v, want md5 %s sha1 %s", res.Hashes, m, s)
			}
			if !bytes.Equal(out.buf, data) || res.Bytes != int64(size) {
				t.Fatalf("image differs from source (len %d vs %d)", len(out.buf), size)
			}
		})
	}
}

func TestBadSectorsZeroFilledAndListed(t *testing.T) {
	data := random(t, 2<<20)
	bad := map[int64]bool{5: true, 6: true, 7: true, 3000: true}
	out := &memAt{}
	src := source.New(&badReader{data: data, bad: bad}, int64(len(data)), source.Config{BlockSize: 1 << 20, Retries: 1})
	res, err := Run(context.Background(), src, raw.NewWriter(out, 64<<10), Config{Hashes: []digest.Name{digest.MD5}})
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte(nil), data...)
	for lba := range bad {
		clear(want[lba*512 : lba*512+512])
	}
	m, _ := sums(want)
	if res.Hashes["MD5"] != m {
		t.Fatalf("MD5 %s, want the zero-filled stream's %s", res.Hashes["MD5"], m)
	}
	if !bytes.Equal(out.buf, want) {
		t.Fatal("image is not the zero-filled stream")
	}
	wantRanges := []source.Range{{First: 5, Count: 3}, {First: 3000, Count: 1}}
	if fmt.Sprint(res.BadRanges) != fmt.Sprint(wantRanges) {
		t.Fatalf("bad ranges %v, want %v", res.BadRanges, wantRanges)
	}
}

func TestGoneSourceFails(t *testing.T) {
	r := &badReader{data: random(t, 4<<20), gone: true}
	src := source.New(r, 4<<20, source.Config{Fatal: func(err error) bool { return errors.Is(err, errGone) }})
	start := time.Now()
	_, err := Run(context.Background(), src, raw.NewWriter(&memAt{}, 64<<10), Config{Hashes: []digest.Name{digest.MD5}})
	if !errors.Is(err, errGone) {
		t.Fatalf("err %v, want gone", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("a gone source must fail promptly")
	}
}

// Pause in the middle, then resume from the checkpoint (as after a restart): the image and the
// hashes equal a run without interruption.
func TestPauseResume(t *testing.T) {
	data := random(t, 24<<20)
	out := &memAt{delay: 2 * time.Millisecond}
	src := source.New(bytes.NewReader(data), int64(len(data)), source.Config{BlockSize: 512 << 10})
	ctx, cancel := context.WithCancel(context.Background())
	var cps []Checkpoint
	var mu sync.Mutex
	go func() { time.Sleep(40 * time.Millisecond); cancel() }()
	res, err := Run(ctx, src, raw.NewWriter(out, 64<<10), Config{Hashes: []digest.Name{digest.MD5, digest.SHA1},
		CheckpointEvery: time.Millisecond, OnCheckpoint: func(c Checkpoint) { mu.Lock(); cps = append(cps, c); mu.Unlock() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want canceled", err)
	}
	if res.Last == nil || res.Last.Offset <= 0 || res.Last.Offset >= int64(len(data)) {
		t.Fatalf("pause checkpoint %+v: want a point inside the stream", res.Last)
	}
	if len(cps) == 0 {
		t.Fatal("no periodic checkpoint was taken")
	}
	// Resume from an older periodic checkpoint too: bytes past it are rewritten.
	for _, cp := range []Checkpoint{cps[0], *res.Last} {
		enc, _ := json.Marshal(cp) // goes through the store as JSON
		var back Checkpoint
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatal(err)
		}
		img := &memAt{buf: append([]byte(nil), out.buf...)}
		w, err := raw.Resume(img, 64<<10, back.Format)
		if err != nil {
			t.Fatal(err)
		}
		src := source.New(bytes.NewReader(data), int64(len(data)), source.Config{BlockSize: 512 << 10})
		res2, err := Run(context.Background(), src, w, Config{Hashes: []digest.Name{digest.MD5, digest.SHA1}, Resume: &back})
		if err != nil {
			t.Fatal(err)
		}
		m, s := sums(data)
		if res2.Hashes["MD5"] != m || res2.Hashes["SHA1"] != s {
			t.Fatalf("resumed from %d: hashes %v, want %s %s", back.Offset, res2.Hashes, m, s)
		}
		if !bytes.Equal(img.buf, data) {
			t.Fatalf("resumed from %d: image differs", back.Offset)
		}
	}
}

// Pad: a stream that ends inside a sector gets the hashes of the stream zero-padded to the sector
// as PaddedHashes, besides its own; a stream of whole sectors gets none.
func TestPaddedHashes(t *testing.T) {
	for _, size := range []int{1, 511, 512, 32767, 1000001} {
		data := random(t, size)
		src := source.New(bytes.NewReader(data), int64(size), source.Config{BlockSize: 256 << 10, Depth: 2})
		res, err := Run(context.Background(), src, raw.NewWriter(&memAt{}, 32<<10), Config{Hashes: []digest.Name{digest.MD5, digest.SHA1}, Pad: 512})
		if err != nil {
			t.Fatal(err)
		}
		m, s := sums(data)
		if res.Hashes["MD5"] != m || res.Hashes["SHA1"] != s {
			t.Fatalf("size %d: hashes %v are not the source's", size, res.Hashes)
		}
		if size%512 == 0 {
			if res.PaddedHashes != nil {
				t.Fatalf("size %d: padded hashes %v for whole sectors", size, res.PaddedHashes)
			}
			continue
		}
		pm, ps := sums(append(append([]byte(nil), data...), make([]byte, 512-size%512)...))
		if res.PaddedHashes["MD5"] != pm || res.PaddedHashes["SHA1"] != ps {
			t.Fatalf("size %d: padded hashes %v, want md5 %s sha1 %s", size, res.PaddedHashes, pm, ps)
		}
	}
}
