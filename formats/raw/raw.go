// Package raw writes a plain dd-style image: the source's bytes, in order, nothing else. It offers the
// same chunk interface as the other formats so the imaging pipeline treats all of them alike.
package raw

import (
	"encoding/json"
	"fmt"
	"io"
)

// DefaultChunkSize is the unit the pipeline hands over; it has no meaning in the file.
const DefaultChunkSize = 1 << 20

// Writer appends chunks at increasing offsets.
type Writer struct {
	w     io.WriterAt
	off   int64
	chunk int
}

// NewWriter writes from offset 0 of w.
func NewWriter(w io.WriterAt, chunkSize int) *Writer {
	if chunkSize <= 0 {
		chunkSize = DefaultChunkSize
	}
	return &Writer{w: w, chunk: chunkSize}
}

// State is what a paused raw acquisition must remember.
type State struct {
	Offset int64 `json:"offset"`
}

// Resume continues writing at the offset of a checkpoint. Bytes past it (written after the
// checkpoint, before the interruption) are overwritten in order.
func Resume(w io.WriterAt, chunkSize int, state json.RawMessage) (*Writer, error) {
	var st State
	if err := json.Unmarshal(state, &st); err != nil {
		return nil, fmt.Errorf("raw checkpoint: %w", err)
	}
	wr := NewWriter(w, chunkSize)
	wr.off = st.Offset
	return wr, nil
}

// ChunkSize is the size of the pieces the pipeline hands over.
func (w *Writer) ChunkSize() int { return w.chunk }

// EncodeChunk is the identity: raw images store the bytes as they are.
func (w *Writer) EncodeChunk(_, src []byte) ([]byte, bool, error) { return src, false, nil }

// WriteChunk appends one chunk.
func (w *Writer) WriteChunk(enc []byte, _ bool, _ int) error {
	n, err := w.w.WriteAt(enc, w.off)
	w.off += int64(n)
	if err != nil {
		return fmt.Errorf("write raw image at %d: %w", w.off, err)
	}
	return nil
}

// Checkpoint syncs what was written and returns the resume state.
func (w *Writer) Checkpoint() (json.RawMessage, error) {
	if s, ok := w.w.(interface{ Sync() error }); ok {
		if err := s.Sync(); err != nil {
			return nil, fmt.Errorf("sync raw image: %w", err)
		}
	}
	return json.Marshal(State{Offset: w.off})
}

// Size is the number of bytes written.
func (w *Writer) Size() int64 { return w.off }
