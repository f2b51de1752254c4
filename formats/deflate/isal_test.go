//go:build cgo && !noisal

package deflate

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
	"os"
	"runtime"
	"sync"
	"testing"
)

// strayBucket is, computed independently of the C code, the hash bucket igzip's level-1 body puts
// input position 2 in when its isal_zstream is at addr (see ev_new in isal.go): the crc32
// instruction (CRC-32C without the inversions hash/crc32 applies) of address bits 16-47, masked
// to level 1's 8,192 buckets.
func strayBucket(addr uintptr) uint32 {
	return hashBucket(uint32(addr >> 16))
}

// hashBucket is igzip's level-1 hash of four little-endian bytes.
func hashBucket(v uint32) uint32 {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return ^crc32.Update(^uint32(0), crc32.MakeTable(crc32.Castagnoli), b[:]) & 8191
}

// corpusChunks returns the non-zero 32 KiB chunks of the test corpus (EVIDENCED_CORPUS), the data
// igzip's varying output was found on.
func corpusChunks(t *testing.T) [][]byte {
	t.Helper()
	p := os.Getenv("EVIDENCED_CORPUS")
	if p == "" {
		t.Skip("EVIDENCED_CORPUS not set (make test sets it)")
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return nonZeroChunks(data)
}

// placedState makes a state placed as the engine places them, freed when the test ends.
func placedState(t *testing.T) *cState {
	t.Helper()
	s := newState(isalLevel[Fast], 0, false)
	if s == nil {
		t.Fatal("no igzip state")
	}
	t.Cleanup(s.free)
	return s
}

// exactState maps a state exactly at the first free window at or below `from` whose stray bucket
// is b, bypassing the placement that makes the output reproducible.
func exactState(t *testing.T, from uint64, b uint32) *cState {
	t.Helper()
	for w := from; w > 1<<16; w-- {
		if strayBucket(uintptr(w)<<16) != b {
			continue
		}
		if s := newState(isalLevel[Fast], w, true); s != nil {
			return s
		}
	}
	t.Fatalf("no free window with stray bucket %d below %#x", b, from<<16)
	return nil
}

// recurringStart reports whether the chunk's first four bytes occur again in it: then the stray
// bucket being theirs is the placement most likely to change the chunk's encoding, because the
// later occurrence is offered position 2 instead of position 0.
func recurringStart(c []byte) bool { return bytes.Contains(c[4:], c[:4]) }

// TestISALStateAddress: igzip's output for a chunk must not depend on where its state lives.
// Twelve states are made at once, so at twelve different addresses, each asked for near a window
// (2 GiB apart) whose stray bucket is that of the first four bytes of a corpus chunk that recur in
// it: a state left at such an address encodes that chunk differently (this test fails so when
// isal.go places states without regard to the bucket). Every non-zero chunk of the corpus, through
// Encode (which stores chunks that look random without a deflate pass), must come out
// byte-identical from all twelve and from a reference state; and each state's address must have
// the stray bucket isal.go means to place states at, computed here independently.
func TestISALStateAddress(t *testing.T) {
	chunks := corpusChunks(t)
	ref := placedState(t)
	top := uint64(ref.addr() >> 16)
	var states []*cState
	seen := map[uintptr]bool{ref.addr(): true}
	for _, c := range chunks {
		if len(states) == 12 {
			break
		}
		if !recurringStart(c) {
			continue
		}
		// The hint: the first window with the chunk's bucket 2 GiB further down per state.
		from := top - uint64(len(states)+1)<<15
		for strayBucket(uintptr(from)<<16) != hashBucket(binary.LittleEndian.Uint32(c)) {
			from--
		}
		s := newState(isalLevel[Fast], from, false)
		if s == nil {
			t.Fatalf("no state near %#x", from<<16)
		}
		defer s.free()
		if seen[s.addr()] {
			t.Fatalf("two states at %#x", s.addr())
		}
		seen[s.addr()] = true
		states = append(states, s)
	}
	if len(states) < 12 {
		t.Fatalf("only %d chunks start with bytes that recur", len(states))
	}
	// One state at a time over every chunk, keeping its buffers in cache; outputs compared by digest.
	sum := func(s *cState, c []byte) [sha256.Size]byte {
		r := (&Encoder{level: Fast, raw: onState{s}}).Encode(nil, c)
		return sha256.Sum256(binary.BigEndian.AppendUint32(r.Zlib, r.Adler32))
	}
	want := make([][sha256.Size]byte, len(chunks))
	for i, c := range chunks {
		want[i] = sum(ref, c)
	}
	differ := 0
	for k, s := range states {
		for i, c := range chunks {
			if sum(s, c) != want[i] {
				differ++
				if differ <= 5 {
					t.Errorf("chunk %d encodes differently with the state at %#x (state %d) and at %#x", i, s.addr(), k, ref.addr())
				}
			}
		}
	}
	if differ > 0 {
		t.Fatalf("%d (chunk, state) pairs of %d differ", differ, len(chunks)*len(states))
	}
	for _, s := range append(states, ref) {
		if b := strayBucket(s.addr()); b != 8191 {
			t.Fatalf("state at %#x has stray bucket %d, not the 8191 (EV_BUCKET) isal.go places states at", s.addr(), b)
		}
	}
	t.Logf("%d non-zero chunks byte-identical from %d states between %#x and %#x", len(chunks), len(states)+1, states[len(states)-1].addr(), ref.addr())
}

// onState is the ISA-L engine with every chunk encoded by one given state.
type onState struct{ *cState }

func (onState) adler32(p []byte) uint32 { return (&isalRaw{}).adler32(p) }

// TestISALVariantsDecode: what the placement prevents, and that it was only ever a matter of
// parsing. Each non-zero chunk of the data is encoded by a state mapped exactly where its stray
// bucket is that of the chunk's first four bytes, and by a state placed as isal.go places them.
// Every encoding must decode, through the standard library's zlib reader with its Adler-32 check,
// to exactly the chunk; and some chunks must encode differently at the two (if none does, igzip
// no longer hashes its state's address and the placement in isal.go can go).
func TestISALVariantsDecode(t *testing.T) {
	data := deterministicData(t)
	ref := placedState(t)
	top := uint64(ref.addr()>>16) - 1
	byBucket := map[uint32][][]byte{}
	for _, c := range nonZeroChunks(data) {
		b := hashBucket(binary.LittleEndian.Uint32(c))
		byBucket[b] = append(byBucket[b], c)
	}
	n, differ := 0, 0
	for b, cs := range byBucket {
		s := exactState(t, top, b)
		for _, c := range cs {
			r := (&Encoder{level: Fast, raw: onState{s}}).Encode(nil, c)
			want := (&Encoder{level: Fast, raw: onState{ref}}).Encode(nil, c)
			check(t, c, want)
			n++
			if !bytes.Equal(r.Zlib, want.Zlib) {
				check(t, c, r)
				differ++
			}
		}
		s.free()
	}
	if differ == 0 {
		t.Fatalf("none of %d chunks encodes differently with its state misplaced: has igzip stopped hashing the state's address?", n)
	}
	t.Logf("%d of %d chunks encode differently with the state misplaced; every encoding decodes exactly", differ, n)
}

// TestISALFallback: when no igzip state can be made, every chunk is encoded by the pure-Go engine
// and decodes, and the engine tries to make a state once, not once per chunk.
func TestISALFallback(t *testing.T) {
	r := newRaw(Fast).(*isalRaw)
	tries := 0
	r.newState = func() *cState { tries++; return nil }
	e := &Encoder{level: Fast, raw: r}
	defer func() {
		if tries != 1 {
			t.Errorf("%d tries to make a state: after the first failure the engine should not search again", tries)
		}
	}()
	for name, c := range chunks(t) {
		t.Run(name, func(t *testing.T) {
			res := e.Encode(nil, c)
			check(t, c, res)
			if g := (&Encoder{level: Fast, raw: r.fallback}).Encode(nil, c); !bytes.Equal(res.Zlib, g.Zlib) {
				t.Fatal("the chunk was not encoded by the Go engine")
			}
		})
	}
}

// TestISALStatesKept: an engine keeps its states across garbage collections and makes no more of
// them than it had callers at once (a sync.Pool dropped them at each collection, and under the
// race detector at random, until no reproducible address was left and chunks fell back to the Go
// engine: an E01 written twice then differed). Four goroutines, 400 chunks each, a collection every
// 50: at most 4 states, and every chunk the same bytes as a single state gives.
func TestISALStatesKept(t *testing.T) {
	cs := chunks(t)
	var in [][]byte
	for _, c := range cs {
		in = append(in, c)
	}
	ref := newRaw(Fast).(*isalRaw)
	want := make([][]byte, len(in))
	for i, c := range in {
		want[i] = bytes.Clone((&Encoder{level: Fast, raw: ref}).Encode(nil, c).Zlib)
	}
	r := newRaw(Fast).(*isalRaw)
	e := &Encoder{level: Fast, raw: r}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 400 {
				k := (g + i) % len(in)
				if got := e.Encode(nil, in[k]); !bytes.Equal(got.Zlib, want[k]) {
					t.Errorf("chunk %d encoded differently", k)
					return
				}
				if i%50 == 0 {
					runtime.GC()
				}
			}
		})
	}
	wg.Wait()
	if r.made > 4 || r.made < 1 {
		t.Fatalf("%d states made for 4 callers", r.made)
	}
}
