//go:build cgo && !noliblz4

package lz4block

/*
#cgo pkg-config: liblz4
#include <lz4.h>
*/
import "C"

import (
	"errors"
	"sync"
	"unsafe"
)

const engine = "liblz4"

// A compression state is Go memory of 8-byte words (the alignment liblz4 asks of it, and no Go
// pointers inside, so it may be handed to C for the call), pooled like pierrec's Compressor.
var states = sync.Pool{New: func() any {
	s := make([]uint64, (int(C.LZ4_sizeofState())+7)/8)
	return &s
}}

func bound(n int) int { return int(C.LZ4_compressBound(C.int(n))) }

func compress(dst, src []byte) (int, error) {
	st := states.Get().(*[]uint64)
	defer states.Put(st)
	// Acceleration 1: LZ4_compress_default's speed and ratio.
	n := C.LZ4_compress_fast_extState(unsafe.Pointer(&(*st)[0]), (*C.char)(unsafe.Pointer(&src[0])),
		(*C.char)(unsafe.Pointer(&dst[0])), C.int(len(src)), C.int(len(dst)), 1)
	if n <= 0 {
		return 0, errors.New("lz4block: liblz4 could not compress the block")
	}
	return int(n), nil
}
