package aff4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// State is where a paused acquisition stands; it is JSON-marshalable so the task store can keep it.
// The first Offset bytes of the container are final. If a bevy is open, its data member starts at
// BevyHeader and holds BevySize bytes so far (CRC BevyCRC), described by Index; everything before
// BevyHeader is complete members with their final local headers. Resuming truncates the container
// to Offset, rebuilds the members from their local headers and continues the open bevy.
type State struct {
	Volume string `json:"volume"` // aff4:ZipVolume URN, also the content of container.description
	Image  string `json:"image"`
	Map    string `json:"map"`
	Stream string `json:"stream"`

	Compression      string    `json:"compression"`
	ChunkSize        int       `json:"chunk_size"`
	ChunksPerSegment int       `json:"chunks_per_segment"`
	AcquiredAt       time.Time `json:"acquired_at"`

	Offset     int64  `json:"offset"`
	Bevy       int    `json:"bevy"`
	BevyHeader int64  `json:"bevy_header"` // -1: no bevy open
	BevySize   int64  `json:"bevy_size"`
	BevyCRC    uint32 `json:"bevy_crc"`
	Index      []byte `json:"index"` // 12-byte entries of the open bevy
	Written    int64  `json:"written"`
	LastShort  bool   `json:"last_short"`

	ReadErrors [][2]int64 `json:"read_errors"`
}

// WriteFile is what a resumable container is written to: a file, written at explicit offsets.
type WriteFile interface {
	io.Writer
	io.WriterAt
}

// syncer is the file's Sync, when it has one.
type syncer interface{ Sync() error }

// Checkpoint flushes the container so that the returned State names a consistent prefix of it, on
// stable storage when the writer under it can Sync. It must be called between chunks; the bevy in
// progress stays open (checkpoints come more often than bevies end). Only a writer on an
// io.WriterAt can checkpoint.
func (w *Writer) Checkpoint() (State, error) {
	if w.err != nil {
		return State{}, w.err
	}
	if w.closed {
		return State{}, errors.New("aff4: checkpoint after Close")
	}
	if w.zw.at == nil {
		return State{}, errors.New("aff4: checkpoint needs a container written at offsets (a file)")
	}
	if len(w.pending) > 0 {
		return State{}, errors.New("aff4: checkpoint inside a Write batch")
	}
	if err := w.zw.flush(); err != nil {
		return State{}, w.fail(err)
	}
	if s, ok := w.zw.at.(syncer); ok {
		// What a checkpoint names must survive a power loss: resuming trusts it.
		if err := s.Sync(); err != nil {
			return State{}, w.fail(err)
		}
	}
	st := State{
		Volume: w.volume, Image: w.image, Map: w.mapURN, Stream: w.stream,
		Compression: w.opt.Compression, ChunkSize: w.chunk, ChunksPerSegment: w.opt.ChunksPerSegment,
		AcquiredAt: w.opt.AcquiredAt,
		Offset:     w.zw.off, Bevy: w.bevy, BevyHeader: -1, Written: w.written, LastShort: w.lastShort,
		ReadErrors: append([][2]int64(nil), w.readErrs...),
	}
	if w.bevyOpen {
		st.BevyHeader, st.BevySize, st.BevyCRC = w.zw.open.off, w.zw.open.size, w.zw.open.crc
		st.Index = append([]byte(nil), w.index...)
	}
	return st, nil
}

// Resume continues the container of st. f is the container reopened for writing and r reads it;
// the caller has truncated it to st.Offset (bytes past it were written after the checkpoint).
// opt gives the case details and hashes; the stream's layout (compression, chunk and bevy size,
// acquisition time) comes from st. The container must be the one st describes: its first member
// names st.Volume and its members up to the open bevy are the ones the writer wrote.
func Resume(r io.ReaderAt, f WriteFile, opt Options, st State) (*Writer, error) {
	if st.Offset <= 0 || st.Volume == "" || st.Stream == "" || st.Image == "" || st.Map == "" {
		return nil, fmt.Errorf("aff4: bad resume state (offset %d)", st.Offset)
	}
	opt.Compression, opt.ChunkSize, opt.ChunksPerSegment = st.Compression, st.ChunkSize, st.ChunksPerSegment
	opt.AcquiredAt = st.AcquiredAt
	w, err := newWriter(opt)
	if err != nil {
		return nil, err
	}
	w.volume, w.image, w.mapURN, w.stream = st.Volume, st.Image, st.Map, st.Stream
	end := st.Offset
	if st.BevyHeader >= 0 {
		end = st.BevyHeader
	}
	if end > st.Offset || len(st.Index)%12 != 0 || len(st.Index)/12 >= w.opt.ChunksPerSegment || (st.BevyHeader >= 0) != (len(st.Index) > 0) {
		return nil, fmt.Errorf("aff4: bad resume state (bevy at %d, %d index bytes)", st.BevyHeader, len(st.Index))
	}
	// The stream's length follows from the chunks written; only the very last chunk is short.
	full := (int64(st.Bevy)*int64(w.opt.ChunksPerSegment) + int64(len(st.Index)/12)) * int64(w.chunk)
	if st.Written != full && !(st.LastShort && st.Written > full-int64(w.chunk) && st.Written < full) {
		return nil, fmt.Errorf("aff4: bad resume state (%d bytes written in %d bevies and %d chunks)", st.Written, st.Bevy, len(st.Index)/12)
	}
	members, err := scanMembers(r, end)
	if err != nil {
		return nil, fmt.Errorf("aff4: partial container: %w", err)
	}
	if err := w.checkMembers(r, members, st); err != nil {
		return nil, err
	}
	w.zw = newZipWriter(f, w.modTime)
	w.zw.resumeAt(st.Offset)
	w.zw.members = members
	w.bevy, w.written, w.lastShort = st.Bevy, st.Written, st.LastShort
	w.readErrs = append([][2]int64(nil), st.ReadErrors...)
	if st.BevyHeader >= 0 {
		name := memberName(fmt.Sprintf("%s/%08d", w.stream, w.bevy))
		if st.BevyHeader+zipLocalLen+int64(len(name))+st.BevySize != st.Offset {
			return nil, fmt.Errorf("aff4: open bevy %d: header at %d and %d bytes do not end at %d", st.Bevy, st.BevyHeader, st.BevySize, st.Offset)
		}
		if err := checkLocalName(r, st.BevyHeader, name); err != nil {
			return nil, err
		}
		w.zw.open = &zipMember{name: name, off: st.BevyHeader, crc: st.BevyCRC, size: st.BevySize}
		w.bevyOpen, w.bevyOff, w.nChunks = true, uint64(st.BevySize), len(st.Index)/12
		w.index = append(w.index[:0], st.Index...)
	}
	return w, nil
}

// Check proves, reading only, that r (size bytes) is the container st was taken of, so that a
// resume may touch it: it holds at least st.Offset bytes, its first member names st.Volume, and
// its members up to the open bevy are the ones the writer wrote. Resume makes the same checks
// (but for the size) before it returns a writer.
func (st State) Check(r io.ReaderAt, size int64) error {
	if size < st.Offset {
		return fmt.Errorf("aff4: the container holds %d bytes, less than the %d of the checkpoint", size, st.Offset)
	}
	_, err := Resume(r, noWrites{}, Options{}, st)
	return err
}

// noWrites is the file of a Check: Resume writes nothing before it returns.
type noWrites struct{}

func (noWrites) Write([]byte) (int, error)          { return 0, errors.New("aff4: check only") }
func (noWrites) WriteAt([]byte, int64) (int, error) { return 0, errors.New("aff4: check only") }

// checkMembers proves the scanned members are this writer's: container.description holds the
// volume URN, then version.txt, then for each finished bevy its data and index members.
func (w *Writer) checkMembers(r io.ReaderAt, ms []zipMember, st State) error {
	if len(ms) != 2+2*st.Bevy {
		return fmt.Errorf("aff4: partial container has %d members, the checkpoint expects %d", len(ms), 2+2*st.Bevy)
	}
	if ms[0].name != "container.description" || ms[1].name != "version.txt" {
		return errors.New("aff4: partial container does not start with container.description and version.txt")
	}
	urn := make([]byte, ms[0].size)
	if _, err := r.ReadAt(urn, ms[0].off+zipLocalLen+int64(len(ms[0].name))); err != nil {
		return fmt.Errorf("aff4: read container.description: %w", err)
	}
	if string(urn) != st.Volume {
		return fmt.Errorf("aff4: the container is volume %s, the checkpoint's is %s", urn, st.Volume)
	}
	for b := 0; b < st.Bevy; b++ {
		data, idx := ms[2+2*b], ms[3+2*b]
		want := memberName(fmt.Sprintf("%s/%08d", w.stream, b))
		if data.name != want || idx.name != want+".index" {
			return fmt.Errorf("aff4: member %s where bevy %d was expected", data.name, b)
		}
		if idx.size != int64(12*w.opt.ChunksPerSegment) {
			return fmt.Errorf("aff4: bevy %d index holds %d bytes, a full bevy's holds %d", b, idx.size, 12*w.opt.ChunksPerSegment)
		}
	}
	return nil
}

func checkLocalName(r io.ReaderAt, off int64, name string) error {
	h := make([]byte, zipLocalLen+len(name))
	if _, err := r.ReadAt(h, off); err != nil {
		return fmt.Errorf("aff4: open bevy header at %d: %w", off, err)
	}
	if binary.LittleEndian.Uint32(h) != zipLocalSig || int(binary.LittleEndian.Uint16(h[26:])) != len(name) ||
		binary.LittleEndian.Uint16(h[28:]) != 0 || !bytes.Equal(h[zipLocalLen:], []byte(name)) {
		return fmt.Errorf("aff4: no header of member %s at %d", name, off)
	}
	return nil
}

// ReadVolumeURN returns the volume URN of a container, complete or partial (a paused
// acquisition's): the content of its first member, container.description, which the writer puts
// first so that a partial container names its volume too. Resume uses it to prove a file is the
// task's own (compare with State.Volume) before touching it.
func ReadVolumeURN(r io.ReaderAt) (string, error) {
	var h [zipLocalLen]byte
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return "", fmt.Errorf("aff4: first member: %w", err)
	}
	const first = "container.description"
	nlen, elen := int(binary.LittleEndian.Uint16(h[26:])), int64(binary.LittleEndian.Uint16(h[28:]))
	size := int64(binary.LittleEndian.Uint32(h[18:]))
	if binary.LittleEndian.Uint32(h[0:]) != zipLocalSig || nlen != len(first) || binary.LittleEndian.Uint16(h[8:]) != 0 ||
		binary.LittleEndian.Uint16(h[6:])&zipFlagDesc != 0 || size == 0 || size > 1024 {
		return "", errors.New("aff4: the file does not start with a stored container.description member")
	}
	b := make([]byte, int64(nlen)+elen+size)
	if _, err := r.ReadAt(b, zipLocalLen); err != nil {
		return "", fmt.Errorf("aff4: container.description: %w", err)
	}
	if string(b[:nlen]) != first {
		return "", errors.New("aff4: the file does not start with container.description")
	}
	urn := strings.TrimSpace(string(b[int64(nlen)+elen:]))
	if !strings.HasPrefix(urn, "aff4:") {
		return "", fmt.Errorf("aff4: container.description holds %q, not a volume URN", urn)
	}
	return urn, nil
}
