//go:build cgo && !noisal

package deflate

/*
#cgo pkg-config: libisal
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <isa-l/igzip_lib.h>

// Exported by libisal (its zlib path uses it) but not declared in igzip_lib.h.
uint32_t isal_adler32(uint32_t init, const unsigned char *buf, uint64_t len);

// ev_clean clears the upper halves of the vector registers igzip's AVX2/AVX-512 code leaves dirty:
// until then every legacy-SSE instruction on this thread pays a transition penalty, and Go's SHA-1
// (SHA-NI, SSE-encoded) on a goroutine that lands on this thread ran ten times slower (measured:
// the acquisition's SHA-1 took 1.76 s of CPU for 256 MiB, 0.16 s without igzip around).
// ev_has_sse42 serves ev_bucket below.
static int ev_has_avx, ev_has_sse42;
__attribute__((constructor)) static void ev_init(void) {
	ev_has_avx = __builtin_cpu_supports("avx");
	ev_has_sse42 = __builtin_cpu_supports("sse4.2");
}
static void ev_clean(void) {
	if (ev_has_avx) __asm__ volatile("vzeroupper" ::: "memory");
}

// ev_enc holds one stateless compressor's state; only C memory, so no Go pointer is ever kept.
typedef struct {
	struct isal_zstream s;
	unsigned char *lvl;
	uint32_t lvl_size;
	int level;
} ev_enc;

// Where the state lives changes igzip's output unless it is placed with care (the package doc has
// the whole story): the level-1 body's first-byte path hashes the isal_zstream pointer, left in
// rcx, where it means to hash input position 2, and so files position 2 under bucket
// crc32c((uint32_t)(stream >> 16)) & hash_mask. Every state is therefore mapped at the start of a
// 64 KiB window whose stray bucket is EV_BUCKET: the output is then a function of the input alone.
// Any constant would do; all ones stays constant under the smaller masks igzip uses for inputs
// under 4 KiB. The mask is level 1's, the only level used here (level 2 shares the bug, with a
// wider mask).
#define EV_BUCKET (IGZIP_LVL1_HASH_SIZE - 1)
#define EV_WINDOW_BITS 16

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

// ev_bucket is the bucket igzip's level-1 body puts input position 2 in for a state at addr: the
// SSE4.2 crc32 instruction (CRC-32C, reflected, no inversions) of bits 16-47 of the address. The
// instruction itself where there is one (ev_map tries thousands of windows), else bit by bit.
__attribute__((target("sse4.2"))) static uint32_t ev_crc32c_hw(uint32_t v) { return __builtin_ia32_crc32si(0, v); }
static uint32_t ev_bucket(uintptr_t addr) {
	uint32_t c = 0, v = (uint32_t)(addr >> EV_WINDOW_BITS);
	if (ev_has_sse42) {
		c = ev_crc32c_hw(v);
	} else {
		for (int i = 0; i < 32; i++) {
			c = (c >> 1) ^ (0x82F63B78u & -((c ^ v) & 1u));
			v >>= 1;
		}
	}
	return c & (IGZIP_LVL1_HASH_SIZE - 1);
}

// ev_map_at maps size bytes exactly at window w, or returns NULL when something else is there.
static void *ev_map_at(uint64_t w, size_t size) {
	void *want = (void *)(uintptr_t)(w << EV_WINDOW_BITS);
	void *p = mmap(want, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED) return NULL;
	if (p != want) { // a kernel before 4.17 takes the address as a hint only
		munmap(p, size);
		return NULL;
	}
	return p;
}

// ev_map maps size bytes at the first free window at or below window `from` (0: where the kernel
// would map it) whose stray bucket is EV_BUCKET. One window in 8,192 qualifies, 512 MiB apart on
// average: the search tries at most 256 of them.
static void *ev_map(uint64_t from, size_t size) {
	if (from == 0) {
		void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) return NULL;
		munmap(p, size);
		from = (uintptr_t)p >> EV_WINDOW_BITS;
	}
	int tries = 0;
	for (uint64_t w = from; w > 16 && tries < 256; w--) {
		if (ev_bucket((uintptr_t)w << EV_WINDOW_BITS) != EV_BUCKET) continue;
		tries++;
		void *p = ev_map_at(w, size);
		if (p) return p;
	}
	return NULL;
}

// ev_new makes a state for level. With exact == 0 it is placed as above, searching down from
// window w (0: anywhere); with exact != 0 it is mapped at window w itself, whatever its bucket:
// only tests do that, to show what the placement prevents.
static ev_enc *ev_new(int level, uint64_t w, int exact) {
	ev_enc *e = exact ? ev_map_at(w, sizeof(ev_enc)) : ev_map(w, sizeof(ev_enc));
	if (!e) return NULL;
	e->level = level;
	e->lvl_size = ISAL_DEF_LVL1_MEDIUM; // room for a 32 KiB chunk's tokens; LARGE measured slower
	e->lvl = malloc(e->lvl_size);
	if (!e->lvl) { munmap(e, sizeof(ev_enc)); return NULL; }
	return e;
}

static void ev_free(ev_enc *e) { free(e->lvl); munmap(e, sizeof(ev_enc)); }

// ev_deflate writes the raw deflate of in to out; returns the output length, or -1 when it does not
// fit in cap bytes.
static int64_t ev_deflate(ev_enc *e, const unsigned char *in, uint32_t n, unsigned char *out, uint32_t cap) {
	// isal_deflate_stateless_init leaves fields it does not use itself (hist_bits among them) as
	// they were, and isal_deflate_stateless reads them: valgrind showed the read on a state that was
	// not zeroed. Zero every field before the internal history buffer (unused when stateless), so no
	// call depends on the one before.
	memset(&e->s, 0, offsetof(struct isal_zstream, internal_state) + offsetof(struct isal_zstate, buffer));
	isal_deflate_stateless_init(&e->s);
	e->s.level = e->level;
	e->s.level_buf = e->lvl;
	e->s.level_buf_size = e->lvl_size;
	e->s.gzip_flag = IGZIP_DEFLATE;
	e->s.end_of_stream = 1;
	e->s.flush = NO_FLUSH;
	e->s.next_in = (uint8_t *)in;
	e->s.avail_in = n;
	e->s.next_out = out;
	e->s.avail_out = cap;
	int r = isal_deflate_stateless(&e->s);
	ev_clean();
	// in and out are Go memory: keep no pointer to them past the call (cgo's rules).
	e->s.next_in = NULL;
	e->s.next_out = NULL;
	if (r != COMP_OK) return -1;
	return e->s.total_out;
}

static uint32_t ev_adler32(const unsigned char *p, uint64_t n) {
	uint32_t a = isal_adler32(1, p, n);
	ev_clean();
	return a;
}
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

const engine = "isa-l"

// isalLevel maps our levels to igzip's (0–3): its level 1 matches zlib level 1's size on text at a
// fraction of the CPU.
var isalLevel = map[Level]C.int{Fast: 1}

// cState owns one C compressor; the cleanup frees it when its engine is collected.
type cState struct {
	p       *C.ev_enc
	cleanup runtime.Cleanup
}

// newState makes a C compressor in the 64 KiB window w of the address space (w<<16): with exact,
// at w itself whatever that does to the output (tests only, see ev_new); else at the first window
// at or below w where igzip's output does not depend on the state (w 0: anywhere). nil when there
// is no memory or no such window free.
func newState(level C.int, w uint64, exact bool) *cState {
	ex := C.int(0)
	if exact {
		ex = 1
	}
	p := C.ev_new(level, C.uint64_t(w), ex)
	if p == nil {
		return nil
	}
	s := &cState{p: p}
	s.cleanup = runtime.AddCleanup(s, func(p *C.ev_enc) { C.ev_free(p) }, p)
	return s
}

// free releases the state now rather than when it is collected (tests make many).
func (s *cState) free() {
	s.cleanup.Stop()
	C.ev_free(s.p)
	s.p = nil
}

// addr is where the state's isal_zstream lives.
func (s *cState) addr() uintptr { return uintptr(unsafe.Pointer(s.p)) }

// deflate writes the raw deflate of src into dst[len(dst):limit]; ok false when it does not fit.
func (s *cState) deflate(dst, src []byte, limit int) ([]byte, bool) {
	room := limit - len(dst)
	if room <= 0 || len(src) == 0 {
		return dst, false
	}
	dst = growTo(dst, limit)
	out := dst[len(dst):limit]
	n := C.ev_deflate(s.p, (*C.uchar)(unsafe.Pointer(&src[0])), C.uint32_t(len(src)),
		(*C.uchar)(unsafe.Pointer(&out[0])), C.uint32_t(room))
	runtime.KeepAlive(s)
	if n < 0 {
		return dst, false
	}
	return dst[:len(dst)+int(n)], true
}

type isalRaw struct {
	// free holds the states not in use. Not a sync.Pool: a pool drops its items at every garbage
	// collection (and at random under the race detector), and each new state takes another of the
	// few windows where igzip's output is reproducible before the collector frees the old one. The
	// engine keeps as many states as it ever had callers at once; they go when the engine does.
	mu   sync.Mutex
	free []*cState
	made int
	// none is set once a state could not be made: the engine does not search the address space
	// again for every chunk.
	none bool
	// fallback encodes a chunk when no igzip state can be made (no C memory, or no free window
	// where its output is reproducible): another valid encoding, never a failed chunk.
	fallback rawEncoder
	newState func() *cState
}

// newRaw uses igzip for Fast; for Best, zlib level 9 (klauspost) stays smaller than igzip's level 3.
func newRaw(level Level) rawEncoder {
	if level == Best {
		return newGoRaw(level)
	}
	l := isalLevel[level]
	return &isalRaw{fallback: newGoRaw(level), newState: func() *cState { return newState(l, 0, false) }}
}

// get takes a free state or makes one; nil when none can be made.
func (r *isalRaw) get() *cState {
	r.mu.Lock()
	if k := len(r.free); k > 0 {
		s := r.free[k-1]
		r.free = r.free[:k-1]
		r.mu.Unlock()
		return s
	}
	if r.none {
		r.mu.Unlock()
		return nil
	}
	r.made++
	r.mu.Unlock()
	s := r.newState()
	if s == nil {
		r.mu.Lock()
		r.none = true
		r.mu.Unlock()
	}
	return s
}

func (r *isalRaw) put(s *cState) {
	r.mu.Lock()
	r.free = append(r.free, s)
	r.mu.Unlock()
}

func (r *isalRaw) deflate(dst, src []byte, limit int) ([]byte, bool) {
	s := r.get()
	if s == nil {
		return r.fallback.deflate(dst, src, limit)
	}
	out, ok := s.deflate(dst, src, limit)
	r.put(s)
	return out, ok
}

func (r *isalRaw) adler32(p []byte) uint32 {
	if len(p) == 0 {
		return 1
	}
	return uint32(C.ev_adler32((*C.uchar)(unsafe.Pointer(&p[0])), C.uint64_t(len(p))))
}
