// Package chunkenc encodes a batch of chunks in parallel and writes them in order: the io.Writer
// path of the E01 and AFF4 writers, which compress chunk by chunk like the pipeline does but are
// handed whole buffers instead of a block stream.
package chunkenc

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Codec is the format's side: EncodeChunk runs on many goroutines at once (dst is a scratch
// buffer the result may alias), WriteChunk is called in chunk order from the caller's goroutine.
type Codec interface {
	EncodeChunk(dst, src []byte) (enc []byte, compressed bool, err error)
	WriteChunk(enc []byte, compressed bool, rawLen int) error
}

// Batch keeps the scratch buffers of one writer across batches. A Batch is used from one
// goroutine at a time.
type Batch struct {
	// BufSize is the capacity of each scratch buffer: the largest encoded chunk, so that encoding
	// allocates nothing.
	BufSize int
	// Workers is how many goroutines encode a batch (0: GOMAXPROCS).
	Workers int
	// Go starts each of them (nil: the go statement): a caller may run the encoding on threads of
	// its own, such as a daemon's lower-priority ones.
	Go func(f func())

	bufs [][]byte
	out  []result
}

type result struct {
	enc  []byte
	comp bool
	err  error
}

// Write encodes chunks on up to Workers goroutines and writes them in order. An encoded chunk
// is never kept as a scratch buffer: encoders may return shared or caller memory. The first error,
// of encoding or writing, stops the writing and is returned; chunks after it are not written.
func (b *Batch) Write(c Codec, chunks [][]byte) error {
	b.Encode(c, chunks)
	return b.WriteOut(c, chunks)
}

// Encode encodes chunks on up to Workers goroutines and keeps the results for WriteOut. It
// calls only EncodeChunk, so it may run on another goroutine while the caller goes on with other
// work (not with this Batch, nor with chunks' memory).
func (b *Batch) Encode(c Codec, chunks [][]byte) {
	n := len(chunks)
	if n == 0 {
		return
	}
	for len(b.bufs) < n {
		b.bufs = append(b.bufs, make([]byte, 0, b.BufSize))
		b.out = append(b.out, result{})
	}
	workers := b.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	start := b.Go
	if start == nil {
		start = func(f func()) { go f() }
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	for range min(workers, n) {
		wg.Add(1)
		start(func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				enc, comp, err := c.EncodeChunk(b.bufs[i][:0], chunks[i])
				b.out[i] = result{enc, comp, err}
			}
		})
	}
	wg.Wait()
}

// WriteOut writes, in order, what Encode made of the same chunks.
func (b *Batch) WriteOut(c Codec, chunks [][]byte) error {
	var err error
	for i := range chunks {
		r := &b.out[i]
		if err == nil {
			err = r.err
		}
		if err == nil {
			err = c.WriteChunk(r.enc, r.comp, len(chunks[i]))
		}
		*r = result{}
	}
	return err
}
