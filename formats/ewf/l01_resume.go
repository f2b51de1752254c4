package ewf

import (
	"errors"
	"fmt"
	"hash"

	"github.com/evidenced/evidenced/formats/digest"
)

// LogicalState is where a paused logical acquisition stands: the segment files up to
// Writer.Offset, the bytes of the partial chunk that were not written yet, the stream's hash
// states and every entry added so far. It is JSON-marshalable for the task store.
type LogicalState struct {
	Writer  State               `json:"writer"`
	Pending []byte              `json:"pending,omitempty"`
	Stream  int64               `json:"stream"`
	MD5     []byte              `json:"md5"`
	SHA1    []byte              `json:"sha1,omitempty"`
	Entries []LogicalEntryState `json:"entries"`
}

// LogicalEntryState is one entry of the tree as a checkpoint keeps it.
type LogicalEntryState struct {
	Entry    LogicalEntry `json:"entry"`
	Off      int64        `json:"off"`
	DataSize int64        `json:"dataSize"`
	Acquired int64        `json:"acquired"`
	Hashes   FileHashes   `json:"hashes"`
}

// Checkpoint makes what was written so far durable and returns the state to resume from. Call it
// between files (not during AddFile).
func (lw *LogicalWriter) Checkpoint() (LogicalState, error) {
	if lw.closed {
		return LogicalState{}, errors.New("ewf: checkpoint after close")
	}
	ws, err := lw.w.checkpoint()
	if err != nil {
		return LogicalState{}, err
	}
	st := LogicalState{Writer: ws, Pending: append([]byte(nil), lw.w.pend...), Stream: lw.stream,
		Entries: make([]LogicalEntryState, len(lw.order))}
	// The chunk writer has hashed the stream up to the partial chunk (but for the part a resume
	// restored, which the hashes hold already); the states saved hold all of it (ResumeLogical has
	// the writer skip it).
	unhashed := st.Pending[lw.w.hashSkip:]
	if st.MD5, err = stateWith(digest.MD5, lw.smd5, unhashed); err != nil {
		return LogicalState{}, fmt.Errorf("ewf: save stream MD5: %w", err)
	}
	if lw.ssha1 != nil {
		if st.SHA1, err = stateWith(digest.SHA1, lw.ssha1, unhashed); err != nil {
			return LogicalState{}, fmt.Errorf("ewf: save stream SHA1: %w", err)
		}
	}
	for i, n := range lw.order {
		st.Entries[i] = LogicalEntryState{Entry: n.e, Off: n.off, DataSize: n.dataSize, Acquired: n.acquired, Hashes: n.hashes}
	}
	return st, nil
}

// ResumeLogical continues an L01 set from a checkpoint: the checkpoint's segment is truncated to
// its offset and reopened through openExisting, the tree is rebuilt, and writing goes on with the
// next file. Segments the paused run created past the checkpoint's are recreated through create
// (the caller removes any left over past Files() after Close). opt must equal the original options.
func ResumeLogical(create CreateFunc, openExisting func(name string) (File, error), truncate func(name string, size int64) error,
	base string, opt LogicalOptions, st LogicalState) (*LogicalWriter, error) {
	lw, err := newLogicalWriter(create, base, opt)
	if err != nil {
		return nil, err
	}
	if len(st.SHA1) > 0 != opt.SHA1 {
		return nil, errors.New("ewf: resume with other hash options than the checkpoint's")
	}
	if lw.smd5, err = digest.RestoreState(digest.MD5, st.MD5); err != nil {
		return nil, fmt.Errorf("ewf: stream: %w", err)
	}
	if lw.ssha1 != nil {
		if lw.ssha1, err = digest.RestoreState(digest.SHA1, st.SHA1); err != nil {
			return nil, fmt.Errorf("ewf: stream: %w", err)
		}
	}
	lw.feedStream()
	for _, es := range st.Entries {
		n, err := lw.add(es.Entry)
		if err != nil {
			return nil, fmt.Errorf("ewf: rebuild tree: %w", err)
		}
		n.off, n.dataSize, n.acquired, n.hashes = es.Off, es.DataSize, es.Acquired, es.Hashes
	}
	if err := lw.w.resume(openExisting, truncate, st.Writer); err != nil {
		return nil, err
	}
	if len(st.Pending) >= lw.w.chunkSize {
		return nil, fmt.Errorf("ewf: checkpoint holds %d pending bytes, more than a chunk", len(st.Pending))
	}
	// The partial chunk goes back where it was: in the writer, not yet in the file.
	lw.w.pend = append(make([]byte, 0, lw.w.chunkSize), st.Pending...)
	lw.w.hashSkip = len(st.Pending) // already in the restored hash states
	lw.stream = st.Stream
	return lw, nil
}

// stateWith is the saved state of h after more bytes, h itself unchanged.
func stateWith(name digest.Name, h hash.Hash, more []byte) ([]byte, error) {
	b, err := digest.SaveState(h)
	if err != nil || len(more) == 0 {
		return b, err
	}
	c, err := digest.RestoreState(name, b)
	if err != nil {
		return nil, err
	}
	c.Write(more)
	return digest.SaveState(c)
}
