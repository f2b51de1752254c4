//go:build !cgo || noliblz4

package lz4block

import (
	"fmt"
	"sync"

	"github.com/pierrec/lz4/v4"
)

const engine = "go"

// The compressor carries a large hash table: pooled so that a chunk does not allocate one.
var compressors = sync.Pool{New: func() any { return new(lz4.Compressor) }}

func bound(n int) int { return lz4.CompressBlockBound(n) }

func compress(dst, src []byte) (int, error) {
	c := compressors.Get().(*lz4.Compressor)
	defer compressors.Put(c)
	n, err := c.CompressBlock(src, dst)
	if err != nil {
		return 0, fmt.Errorf("lz4block: %w", err)
	}
	if n == 0 { // pierrec's word for a block that would not be smaller
		return len(src), nil
	}
	return n, nil
}
