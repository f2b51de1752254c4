//go:build cgo && isal

package deflate

/*
#cgo pkg-config: libisal
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <isa-l/igzip_lib.h>

// Exported by libisal (its zlib path uses it) but not declared in igzip_lib.h.
uint32_t isal_adler32(uint32_t init, const unsigned char *buf, uint64_t len);

// ev_clean clears the upper halves of the vector registers igzip's AVX2/AVX-512 code leaves dirty:
// until then every legacy-SSE instruction on this thread pays a transition penalty, and Go's SHA-1
// (SHA-NI, SSE-encoded) on a goroutine that lands on this thread ran ten times slower (measured:
// the acquisition's SHA-1 took 1.76 s of CPU for 256 MiB, 0.16 s without igzip around).
static int ev_has_avx;
__attribute__((constructor)) static void ev_init(void) { ev_has_avx = __builtin_cpu_supports("avx"); }
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

static ev_enc *ev_new(int level) {
	ev_enc *e = calloc(1, sizeof(ev_enc));
	if (!e) return NULL;
	e->level = level;
	e->lvl_size = ISAL_DEF_LVL1_MEDIUM; // room for a 32 KiB chunk's tokens; LARGE measured slower
	e->lvl = malloc(e->lvl_size);
	if (!e->lvl) { free(e); return NULL; }
	return e;
}

static void ev_free(ev_enc *e) { free(e->lvl); free(e); }

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

// cState owns one C compressor; the cleanup frees it when the pool drops it.
type cState struct{ p *C.ev_enc }

type isalRaw struct {
	level C.int
	pool  sync.Pool
}

// newRaw uses igzip for Fast; for Best, zlib level 9 (klauspost) stays smaller than igzip's level 3.
func newRaw(level Level) rawEncoder {
	if level == Best {
		return newGoRaw(level)
	}
	r := &isalRaw{level: isalLevel[level]}
	r.pool.New = func() any {
		p := C.ev_new(r.level)
		if p == nil {
			panic("deflate: out of C memory for an igzip state")
		}
		s := &cState{p: p}
		runtime.AddCleanup(s, func(p *C.ev_enc) { C.ev_free(p) }, p)
		return s
	}
	return r
}

func (r *isalRaw) deflate(dst, src []byte, limit int) ([]byte, bool) {
	room := limit - len(dst)
	if room <= 0 || len(src) == 0 {
		return dst, false
	}
	dst = growTo(dst, limit)
	out := dst[len(dst):limit]
	s := r.pool.Get().(*cState)
	n := C.ev_deflate(s.p, (*C.uchar)(unsafe.Pointer(&src[0])), C.uint32_t(len(src)),
		(*C.uchar)(unsafe.Pointer(&out[0])), C.uint32_t(room))
	r.pool.Put(s)
	if n < 0 {
		return dst, false
	}
	return dst[:len(dst)+int(n)], true
}

func (r *isalRaw) adler32(p []byte) uint32 {
	if len(p) == 0 {
		return 1
	}
	return uint32(C.ev_adler32((*C.uchar)(unsafe.Pointer(&p[0])), C.uint64_t(len(p))))
}
