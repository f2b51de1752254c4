package ewf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
)

// State is where a paused acquisition stands; it is JSON-marshalable so the task store can keep it.
// Everything before Offset in segment Segment is final (the last sectors group and its tables are
// written), so resuming means truncating that segment to Offset and appending from there.
type State struct {
	Segment    int           `json:"segment"`
	Offset     int64         `json:"offset"`
	Chunks     int64         `json:"chunks"`      // chunks written, i.e. media bytes = Chunks*ChunkSize
	SegChunks  bool          `json:"seg_chunks"`  // the current segment holds chunks already
	ReadErrors []SectorRange `json:"read_errors"` // error2 ranges so far
	SetID      []byte        `json:"set_id"`      // volume set identifier, the same in every segment
}

// Checkpoint ends the current sectors/table group and flushes, so the files up to the returned
// State are consistent. It must be called at a chunk boundary (no partial chunk pending in Write).
// The caller must also keep its hash state (crypto/md5 and sha1 are encoding.BinaryMarshalers).
func (w *Writer) Checkpoint() (State, error) {
	if len(w.pend) > 0 {
		return State{}, errors.New("ewf: checkpoint inside a chunk")
	}
	return w.checkpoint()
}

// checkpoint is Checkpoint without the chunk-boundary rule: the bytes of a partial chunk (w.pend)
// are not in the files yet, and a caller that allows them saves them itself.
func (w *Writer) checkpoint() (State, error) {
	if w.err != nil {
		return State{}, w.err
	}
	if w.closed {
		return State{}, errors.New("ewf: checkpoint after close")
	}
	if err := w.drain(); err != nil {
		return State{}, err
	}
	if err := w.endGroup(); err != nil {
		return State{}, err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = err
		return State{}, err
	}
	// What a checkpoint names must survive a power loss: resuming trusts it.
	if err := syncFile(w.f); err != nil {
		w.err = err
		return State{}, err
	}
	return State{Segment: w.seg, Offset: w.off, Chunks: w.chunks, SegChunks: w.segHas,
		ReadErrors: append([]SectorRange(nil), w.errs...), SetID: append([]byte(nil), w.volume[64:80]...)}, nil
}

// Resume continues an acquisition from st: the segment st.Segment is truncated to st.Offset
// (dropping whatever was written after the checkpoint) and reopened through openExisting; later
// segments are recreated through create. If the paused run had already created segments beyond
// those of the finished set, the caller removes the names past Files() after Close.
// opt must equal the original options.
func Resume(create CreateFunc, openExisting func(name string) (File, error), truncate func(name string, size int64) error,
	base string, opt Options, st State) (*Writer, error) {
	w, err := newWriter(create, base, opt)
	if err != nil {
		return nil, err
	}
	return w, w.resume(openExisting, truncate, st)
}

// resume reattaches a fresh writer to the files of a checkpoint.
func (w *Writer) resume(openExisting func(name string) (File, error), truncate func(name string, size int64) error, st State) error {
	if st.Segment < 1 || st.Offset < fileHdrSize {
		return fmt.Errorf("ewf: bad resume state %+v", st)
	}
	name := w.segmentName(st.Segment)
	if len(st.SetID) == 16 {
		copy(w.volume[64:80], st.SetID)
		binary.LittleEndian.PutUint32(w.volume[1048:], adler32.Checksum(w.volume[:1048]))
	}
	if err := truncate(name, st.Offset); err != nil {
		return err
	}
	f, err := openExisting(name)
	if err != nil {
		return err
	}
	for i := 1; i <= st.Segment; i++ {
		w.files = append(w.files, w.segmentName(i))
	}
	w.seg = st.Segment
	w.attach(f, st.Offset)
	w.segHas = st.SegChunks
	w.chunks = st.Chunks
	w.errs = append([]SectorRange(nil), st.ReadErrors...)
	return nil
}
