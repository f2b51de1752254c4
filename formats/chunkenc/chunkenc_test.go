package chunkenc

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// upper "encodes" a chunk by upper-casing it into dst; chunk "zero" encodes to a shared buffer, as
// formats return their precomputed zero chunk, and "bad" fails.
type upper struct {
	shared  []byte
	written [][]byte
	failAt  int // WriteChunk fails at this call (-1: never)
}

func (u *upper) EncodeChunk(dst, src []byte) ([]byte, bool, error) {
	switch string(src) {
	case "zero":
		return u.shared, true, nil
	case "bad":
		return nil, false, errors.New("cannot encode")
	}
	return append(dst[:0], bytes.ToUpper(src)...), false, nil
}

func (u *upper) WriteChunk(enc []byte, _ bool, rawLen int) error {
	if len(u.written) == u.failAt {
		return errors.New("disk full")
	}
	u.written = append(u.written, append([]byte(nil), enc...))
	return nil
}

func chunks(s ...string) [][]byte {
	out := make([][]byte, len(s))
	for i, c := range s {
		out[i] = []byte(c)
	}
	return out
}

func TestBatchWrite(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      [][]byte
		failAt  int
		want    string // the chunks written, joined by "|"
		wantErr string
	}{
		{"order", chunks("a", "b", "c", "d", "e", "f", "g", "h", "i", "j"), -1, "A|B|C|D|E|F|G|H|I|J", ""},
		{"shared result", chunks("a", "zero", "b", "zero"), -1, "A|ZZZ|B|ZZZ", ""},
		{"encode error stops before it", chunks("a", "b", "bad", "c"), -1, "A|B", "cannot encode"},
		{"write error stops", chunks("a", "b", "c"), 1, "A", "disk full"},
		{"empty", nil, -1, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &upper{shared: []byte("ZZZ"), failAt: tc.failAt}
			b := &Batch{BufSize: 8}
			err := b.Write(u, tc.in)
			if (err == nil) != (tc.wantErr == "") || (err != nil && err.Error() != tc.wantErr) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			if got := string(bytes.Join(u.written, []byte("|"))); got != tc.want {
				t.Fatalf("written %q, want %q", got, tc.want)
			}
			// A second batch on the same scratch buffers must not write into the shared result.
			if err := b.Write(u, chunks("x", "y", "z", "w")); err == nil && string(u.shared) != "ZZZ" {
				t.Fatalf("the shared result was overwritten: %q", u.shared)
			}
		})
	}
}

// Batches larger than the last one reuse and grow the scratch buffers.
func TestBatchSizes(t *testing.T) {
	u := &upper{failAt: -1}
	b := &Batch{BufSize: 4}
	var want []string
	for _, n := range []int{3, 1, 40, 7} {
		var in [][]byte
		for i := range n {
			s := fmt.Sprintf("c%d-%d", n, i)
			in = append(in, []byte(s))
			want = append(want, string(bytes.ToUpper([]byte(s))))
		}
		if err := b.Write(u, in); err != nil {
			t.Fatal(err)
		}
	}
	if got := string(bytes.Join(u.written, []byte("|"))); got != string(bytes.Join(chunks(want...), []byte("|"))) {
		t.Fatalf("written %q", got)
	}
}

// Workers bounds the goroutines a batch is encoded on, and Go starts each of them.
func TestBatchWorkersAndGo(t *testing.T) {
	var mu sync.Mutex
	started := 0
	b := &Batch{BufSize: 8, Workers: 3, Go: func(f func()) {
		mu.Lock()
		started++
		mu.Unlock()
		go f()
	}}
	u := &upper{failAt: -1}
	if err := b.Write(u, chunks("a", "b", "c", "d", "e", "f", "g")); err != nil {
		t.Fatal(err)
	}
	if got := string(bytes.Join(u.written, []byte("|"))); got != "A|B|C|D|E|F|G" || started != 3 {
		t.Fatalf("wrote %q on %d goroutines started by Go, want A|B|C|D|E|F|G on 3", got, started)
	}
	if err := b.Write(u, chunks("h", "i")); err != nil || started != 5 {
		t.Fatalf("two chunks: %v, %d goroutines in all, want 5 (no more workers than chunks)", err, started)
	}
}
