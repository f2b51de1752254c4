package ewf

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// Closing an L01 must not hold its whole ltree in memory: the tree grows with the entries (about
// 190 bytes of text and twice that in UTF-16 per entry: 30 MB at the end of the 2 GiB corpus's
// 52,760 entries, 600 MB for a million), rendered where four tasks may end at once. The bytes
// allocated by Close, 100,000 entries in, stay below a bound that does not grow with them.
func TestL01CloseMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	w, err := NewLogicalWriter(func(string) (File, error) { return discard{}, nil }, "x", LogicalOptions{Metadata: testMeta(), MD5: true})
	if err != nil {
		t.Fatal(err)
	}
	one := []byte{1}
	for i := range 100_000 {
		if _, err := w.AddFile(LogicalEntry{Path: fmt.Sprintf("d%02d/f%06d.txt", i%50, i), Size: 1}, bytes.NewReader(one)); err != nil {
			t.Fatal(err)
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("Close of 100000 entries allocated %d KiB", alloc>>10)
	if alloc > 4<<20 {
		t.Fatalf("Close of 100000 entries allocated %d KiB; the bound is 4096 KiB", alloc>>10)
	}
}

// A section whose emitted body is not the size its descriptor gives would leave every section
// after it unreachable: Close fails instead of writing such a set.
func TestEmitSectionSize(t *testing.T) {
	for _, n := range []int{3, 5} {
		w, err := NewWriter(func(string) (File, error) { return discard{}, nil }, "x", Options{MediaSize: 512})
		if err != nil {
			t.Fatal(err)
		}
		w.extra = []namedSection{{typ: "ltree", size: 4, emit: func(write func([]byte) error) error {
			return write(make([]byte, n))
		}}}
		if err := w.Close(); err == nil || !strings.Contains(err.Error(), "descriptor says 4") {
			t.Fatalf("body of %d bytes for a size of 4: Close returned %v", n, err)
		}
	}
}
