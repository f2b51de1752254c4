package ewf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/adler32"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/klauspost/compress/zlib"

	"github.com/evidenced/evidenced/formats/blockbuf"
	"github.com/evidenced/evidenced/formats/chunkenc"
	"github.com/evidenced/evidenced/formats/deflate"
	"github.com/evidenced/evidenced/formats/digest"
)

// File is one segment file being written; *os.File satisfies it.
type File interface {
	io.Writer
	io.WriterAt
	Close() error
}

// CreateFunc creates a segment file; the target decides where its bytes go.
type CreateFunc func(name string) (File, error)

// Options configure a Writer.
type Options struct {
	Metadata
	Compression     Compression
	MediaSize       int64
	BytesPerSector  uint32
	SectorsPerChunk uint32
	SegmentSize     int64
	Removable       bool
	Threads
}

// Threads place the goroutines Write encodes and hashes its batches on. The zero value is the go
// statement and GOMAXPROCS encoders; a daemon passes its own, to run that work below the priority
// of its API.
type Threads struct {
	Go      func(f func()) // starts each goroutine (nil: the go statement)
	Workers int            // goroutines encoding a batch at once (0: GOMAXPROCS)
}

// start runs f on a goroutine of t's.
func (t Threads) start(f func()) {
	if t.Go != nil {
		t.Go(f)
		return
	}
	go f()
}

// Writer writes an E01 segment set.
type Writer struct {
	create    CreateFunc
	base      string
	opt       Options
	chunkSize int
	enc       *deflate.Encoder // nil: no compression
	zeros     []byte
	zeroEnc   []byte // encoded full all-zero chunk, precomputed so zero chunks cost a memcmp
	zeroComp  bool
	volume    []byte

	files   []string
	f       File
	bw      *blockbuf.Writer
	off     int64
	seg     int
	inGroup bool
	gStart  int64
	entries []uint32
	segHas  bool
	chunks  int64
	errs    []SectorRange
	hashes  map[digest.Name][]byte
	err     error
	closed  bool

	// Write path state
	pend  []byte
	held  [][]byte // full chunks assembled from small writes, encoded together (in parallel) when heldMax are held
	spare [][]byte // chunk buffers to assemble in
	// flight is the held batch being encoded on another goroutine (done closes when it is) while
	// Write goes on assembling the next; the next writeHeld, or drain, writes it. Only EncodeChunk
	// runs there: every change to the files and the writer's state stays on the caller's
	// goroutine. Two Batches take turns (cur is the flight's), so that a batch is written while
	// the one after it is encoded.
	flight  [][]byte
	done    chan struct{}
	batches [2]chunkenc.Batch
	cur     int
	// streamHashes take every byte Write is given, in order: each hashes a batch's chunks on a
	// goroutine of its own while the batch is encoded (set by LogicalWriter; only Write feeds them).
	// They hold the bytes written up to the last chunk handed on: flush completes them.
	streamHashes []hash.Hash
	// hashSkip is how many bytes at the start of the next chunk handed on the stream hashes
	// already hold: a partial chunk that came back from a checkpoint, whose hash states include it.
	hashSkip int

	// L01 mode (LogicalWriter): LVF signature, L01 names, logical volume, and extra sections
	// (the ltree) written in the last segment before the hashes; they are only known at Close,
	// so when they do not fit, Close moves on to a new segment rather than reserving room in all.
	logical bool
	extra   []namedSection
}

// namedSection is an extra section: a body of size bytes that emit writes in pieces, as one too
// large to hold in memory (an L01's ltree grows with its entries) must be.
type namedSection struct {
	typ  string
	size int64
	emit func(write func([]byte) error) error
}

// NewWriter starts writing base+".E01" through create.
func NewWriter(create CreateFunc, base string, opt Options) (*Writer, error) {
	w, err := newWriter(create, base, opt)
	if err != nil {
		return nil, err
	}
	if err := w.openSegment(); err != nil {
		return nil, err
	}
	return w, nil
}

func newWriter(create CreateFunc, base string, opt Options) (*Writer, error) {
	if opt.BytesPerSector == 0 {
		opt.BytesPerSector = 512
	}
	if opt.SectorsPerChunk == 0 {
		opt.SectorsPerChunk = 64
	}
	if opt.MediaSize < 0 {
		return nil, errors.New("ewf: negative media size")
	}
	if opt.SegmentSize != 0 && opt.SegmentSize < 1<<20 {
		return nil, errors.New("ewf: segment size below 1 MiB")
	}
	w := &Writer{create: create, base: base, opt: opt, hashes: map[digest.Name][]byte{}}
	w.chunkSize = int(opt.BytesPerSector * opt.SectorsPerChunk)
	var err error
	switch opt.Compression {
	case CompressNone:
	case CompressEmptyBlock, CompressFast:
		w.enc, err = deflate.New(deflate.Fast)
	case CompressBest:
		w.enc, err = deflate.New(deflate.Best)
	default:
		return nil, fmt.Errorf("ewf: bad compression %d", opt.Compression)
	}
	if err != nil {
		return nil, fmt.Errorf("ewf: %w", err)
	}
	w.zeros = make([]byte, w.chunkSize)
	for i := range w.batches {
		w.batches[i].BufSize, w.batches[i].Workers, w.batches[i].Go = w.MaxEncodedSize(), opt.Workers, opt.Go
	}
	w.zeroEnc, w.zeroComp = w.encode(nil, w.zeros, true)
	w.entries = make([]uint32, 0, maxTableEntry)
	w.volume = w.volumeSection()
	return w, nil
}

// ChunkSize is the number of media bytes in one chunk.
func (w *Writer) ChunkSize() int { return w.chunkSize }

// MaxEncodedSize is the dst capacity EncodeChunk needs to never allocate.
func (w *Writer) MaxEncodedSize() int { return w.chunkSize + 4 }

// Files returns the names of the segment files created so far.
func (w *Writer) Files() []string { return append([]string(nil), w.files...) }

// EncodeChunk prepares one chunk: a zlib stream if compressed, else the raw data followed by its
// Adler-32 (as EWF stores uncompressed chunks). Safe for concurrent use. dst should have capacity
// MaxEncodedSize() to avoid allocation.
func (w *Writer) EncodeChunk(dst, src []byte) ([]byte, bool, error) {
	if len(src) == 0 || len(src) > w.chunkSize {
		return nil, false, fmt.Errorf("ewf: chunk of %d bytes", len(src))
	}
	if r := len(src) % int(w.opt.BytesPerSector); r != 0 && !w.logical {
		// The media is whole sectors (the volume section counts them; libewf reads the last
		// chunk as sectors): the last sector of a source whose size is not a multiple of the
		// sector size is stored zero-padded. Only a stream's last chunk is ever short.
		p := make([]byte, len(src)+int(w.opt.BytesPerSector)-r)
		copy(p, src)
		src = p
	}
	zero := bytes.Equal(src, w.zeros[:len(src)])
	if zero && len(src) == w.chunkSize {
		return append(dst[:0], w.zeroEnc...), w.zeroComp, nil
	}
	enc, comp := w.encode(dst, src, zero)
	return enc, comp, nil
}

// encode compresses src when that pays; otherwise it stores src followed by its Adler-32, as libewf
// does. The Adler-32 is computed once either way: the encoder returns it with the zlib stream.
func (w *Writer) encode(dst, src []byte, zero bool) ([]byte, bool) {
	var sum uint32
	if w.enc != nil && (zero || w.opt.Compression != CompressEmptyBlock) {
		r := w.enc.Encode(dst, src)
		if r.Zlib != nil {
			return r.Zlib, true
		}
		sum = r.Adler32
	} else {
		sum = adler32.Checksum(src)
	}
	dst = append(dst[:0], src...)
	return binary.LittleEndian.AppendUint32(dst, sum), false
}

func (w *Writer) write(p []byte) error {
	if w.err != nil {
		return w.err
	}
	_, err := w.bw.Write(p)
	w.off += int64(len(p))
	w.err = err
	return err
}

func (w *Writer) writeAt(p []byte, off int64) error {
	if w.err != nil {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = err
		return err
	}
	_, err := w.f.WriteAt(p, off)
	w.err = err
	return err
}

func (w *Writer) section(typ string, payload []byte) error {
	var d [descSize]byte
	size := int64(descSize + len(payload))
	putDescriptor(d[:], typ, w.off+size, size)
	if err := w.write(d[:]); err != nil {
		return err
	}
	return w.write(payload)
}

// emitSection writes a section whose body x.emit produces in pieces. A body that is not the size
// its descriptor gives would leave the sections after it unreachable: that fails the writer.
func (w *Writer) emitSection(x namedSection) error {
	var d [descSize]byte
	size := descSize + x.size
	putDescriptor(d[:], x.typ, w.off+size, size)
	if err := w.write(d[:]); err != nil {
		return err
	}
	start := w.off
	if err := x.emit(w.write); err != nil {
		if w.err == nil {
			w.err = err
		}
		return err
	}
	if n := w.off - start; n != x.size {
		w.err = fmt.Errorf("ewf: %s section body is %d bytes, its descriptor says %d", x.typ, n, x.size)
		return w.err
	}
	return nil
}

// syncFile flushes a segment to stable storage when its File can (os.File and every target can).
func syncFile(f File) error {
	if s, ok := f.(interface{ Sync() error }); ok {
		if err := s.Sync(); err != nil {
			return fmt.Errorf("ewf: sync segment: %w", err)
		}
	}
	return nil
}

func (w *Writer) segmentName(n int) string {
	if w.logical {
		return LogicalSegmentName(w.base, n)
	}
	return SegmentName(w.base, n)
}

func (w *Writer) openSegment() error {
	w.seg++
	name := w.segmentName(w.seg)
	f, err := w.create(name)
	if err != nil {
		w.err = err
		return err
	}
	w.files = append(w.files, name)
	w.f = f
	w.attach(f, 0)
	w.segHas = false
	fh := fileHeader(w.seg)
	if w.logical {
		copy(fh, lvfSignature)
	}
	w.write(fh)
	if w.seg == 1 {
		h2 := zlibBytes(utf16le(w.header2Text()))
		w.section("header2", h2)
		w.section("header2", h2)
		w.section("header", zlibBytes([]byte(w.headerText())))
		return w.section("volume", w.volume)
	}
	return w.section("data", w.volume)
}

// attach makes f the current segment. All writes go through WriteAt at our own offset, so a
// segment reopened by Resume needs no seek or append mode; and through a blockbuf.Writer, so a local
// target writes the chunk data in whole blocks straight to disk (with a plain buffer, the section
// descriptors and tables put half of a segment's writes off the block boundary and through the
// page cache).
func (w *Writer) attach(f File, off int64) {
	w.f = f
	if w.bw == nil {
		w.bw = blockbuf.New(f, off, 1<<20)
	} else {
		w.bw.Reset(f, off)
	}
	w.off = off
}

func (w *Writer) volumeSection() []byte {
	b := make([]byte, volumeSize)
	if !w.opt.Removable {
		b[0] = 1
	}
	sectors := (w.opt.MediaSize + int64(w.opt.BytesPerSector) - 1) / int64(w.opt.BytesPerSector)
	chunks := (w.opt.MediaSize + int64(w.chunkSize) - 1) / int64(w.chunkSize)
	binary.LittleEndian.PutUint32(b[4:], uint32(chunks))
	binary.LittleEndian.PutUint32(b[8:], w.opt.SectorsPerChunk)
	binary.LittleEndian.PutUint32(b[12:], w.opt.BytesPerSector)
	binary.LittleEndian.PutUint64(b[16:], uint64(sectors))
	b[36] = 3 // image | physical
	if w.logical {
		// As EnCase writes L01: media type "logical evidence", image but not physical. MediaSize
		// is 0, so chunk and sector counts stay 0 like EnCase's: the stream size is the ltree's
		// "tb", unknown until the end.
		b[0], b[36] = 0x0e, 1
	}
	switch w.opt.Compression {
	case CompressFast:
		b[52] = 1
	case CompressBest:
		b[52] = 2
	}
	binary.LittleEndian.PutUint32(b[56:], w.opt.SectorsPerChunk) // error granularity
	guid := b[64:80]
	binary.LittleEndian.PutUint64(guid, uint64(time.Now().UnixNano()))
	binary.LittleEndian.PutUint64(guid[8:], uint64(w.opt.MediaSize)^0x5a5a5a5a)
	binary.LittleEndian.PutUint32(b[1048:], adler32.Checksum(b[:1048]))
	return b
}

func clean(s string) string {
	r := []rune(s)
	for i, c := range r {
		if c == '\t' || c == '\n' || c == '\r' {
			r[i] = ' '
		}
	}
	return string(r)
}

func (w *Writer) times() (time.Time, time.Time) {
	a, s := w.opt.AcquisitionTime, w.opt.SystemTime
	if a.IsZero() {
		a = time.Now()
	}
	if s.IsZero() {
		s = a
	}
	return a, s
}

// maxHeaderValue is the longest header value, in bytes of UTF-8, that libewf's ewfinfo prints;
// from 512 bytes on it fails on the whole header.
const maxHeaderValue = 511

func (w *Writer) notes() string {
	// The ASCII header has no model/serial fields: keep them in the notes there.
	m := w.opt.Metadata
	n := m.Notes
	if m.Model == "" && m.Serial == "" {
		return n
	}
	ms := fmt.Sprintf("model: %s, serial: %s", m.Model, m.Serial)
	if n == "" {
		return ms
	}
	if with := n + " (" + ms + ")"; len(with) <= maxHeaderValue {
		return with
	}
	return n // header2 keeps model and serial in their own fields
}

func (w *Writer) headerText() string {
	m := w.opt.Metadata
	a, s := w.times()
	f := func(t time.Time) string {
		return fmt.Sprintf("%d %d %d %d %d %d", t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second())
	}
	return "1\r\nmain\r\nc\tn\ta\te\tt\tav\tov\tm\tu\tp\r\n" +
		clean(m.CaseNumber) + "\t" + clean(m.EvidenceNumber) + "\t" + clean(m.Description) + "\t" +
		clean(m.Examiner) + "\t" + clean(w.notes()) + "\t" + clean(m.Software) + "\t" + clean(m.OS) + "\t" +
		f(a) + "\t" + f(s) + "\t0\r\n\r\n"
}

func (w *Writer) header2Text() string {
	m := w.opt.Metadata
	a, s := w.times()
	return "3\nmain\na\tc\tn\te\tt\tmd\tsn\tav\tov\tm\tu\tp\tdc\n" +
		clean(m.Description) + "\t" + clean(m.CaseNumber) + "\t" + clean(m.EvidenceNumber) + "\t" +
		clean(m.Examiner) + "\t" + clean(m.Notes) + "\t" + clean(m.Model) + "\t" + clean(m.Serial) + "\t" +
		clean(m.Software) + "\t" + clean(m.OS) + "\t" + strconv.FormatInt(a.Unix(), 10) + "\t" +
		strconv.FormatInt(s.Unix(), 10) + "\t0\t\n\n" +
		"srce\n0\t1\np\tn\tid\tev\ttb\tlo\tpo\tah\tgu\taq\n0\t0\n\t\t\t\t\t-1\t-1\t\t\t\n\n" +
		"sub\n0\t1\np\tn\tid\tnu\tco\tgu\n0\t0\n\t\t\t\t1\t\n\n"
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2, 2+2*len(u))
	b[0], b[1] = 0xff, 0xfe
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return b
}

func zlibBytes(p []byte) []byte {
	var b bytes.Buffer
	z, _ := zlib.NewWriterLevel(&b, zlib.BestCompression)
	z.Write(p)
	z.Close()
	return b.Bytes()
}

// trailerReserve is what must still fit in a segment after the current group: its table and
// table2, and the closing sections.
func (w *Writer) trailerReserve(entries int) int64 {
	t := int64(descSize + tableHdrSize + 4*entries + 4)
	return 2*t + descSize + (descSize + error2HdrSize + 8*int64(len(w.errs)) + 4) +
		descSize + digestSize + descSize + hashSize + descSize + volumeSize
}

// WriteChunk appends one chunk as returned by EncodeChunk, in stream order.
func (w *Writer) WriteChunk(enc []byte, compressed bool, rawLen int) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("ewf: write after close")
	}
	if w.opt.SegmentSize > 0 && w.segHas {
		add := int64(len(enc))
		if !w.inGroup {
			add += descSize
		}
		if w.off+add+w.trailerReserve(len(w.entries)+1) > w.opt.SegmentSize {
			if err := w.endGroup(); err != nil {
				return err
			}
			if err := w.lastSection("next"); err != nil {
				return err
			}
			if err := w.closeFile(); err != nil {
				return err
			}
			if err := w.openSegment(); err != nil {
				return err
			}
		}
	}
	if w.inGroup && (len(w.entries) == maxTableEntry || w.off+int64(len(enc))-w.gStart > 0x7fffffff) {
		if err := w.endGroup(); err != nil {
			return err
		}
	}
	if !w.inGroup {
		w.inGroup = true
		w.gStart = w.off
		w.entries = w.entries[:0]
		var d [descSize]byte
		if err := w.write(d[:]); err != nil { // patched in endGroup
			return err
		}
	}
	e := uint32(w.off - w.gStart)
	if compressed {
		e |= compressedBit
	}
	w.entries = append(w.entries, e)
	w.segHas = true
	w.chunks++
	return w.write(enc)
}

func (w *Writer) endGroup() error {
	if !w.inGroup {
		return nil
	}
	w.inGroup = false
	var d [descSize]byte
	putDescriptor(d[:], "sectors", w.off, w.off-w.gStart)
	if err := w.writeAt(d[:], w.gStart); err != nil {
		return err
	}
	t := make([]byte, tableHdrSize, tableHdrSize+4*len(w.entries)+4)
	binary.LittleEndian.PutUint32(t, uint32(len(w.entries)))
	binary.LittleEndian.PutUint64(t[8:], uint64(w.gStart))
	binary.LittleEndian.PutUint32(t[20:], adler32.Checksum(t[:20]))
	for _, e := range w.entries {
		t = binary.LittleEndian.AppendUint32(t, e)
	}
	t = binary.LittleEndian.AppendUint32(t, adler32.Checksum(t[tableHdrSize:]))
	w.section("table", t)
	return w.section("table2", t)
}

func (w *Writer) closeFile() error {
	if w.err != nil {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = err
		return err
	}
	// A finished segment must be on the medium before the task says completed.
	if err := syncFile(w.f); err != nil {
		w.f.Close()
		w.f = nil
		w.err = err
		return err
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		w.err = err
	}
	return err
}

// AddReadError records sectors that could not be read (they are stored as zeros); they are
// listed in the error2 section.
func (w *Writer) AddReadError(firstSector, sectorCount int64) {
	if sectorCount <= 0 {
		return
	}
	if n := len(w.errs); n > 0 && w.errs[n-1].First+w.errs[n-1].Count == firstSector {
		w.errs[n-1].Count += sectorCount
		return
	}
	w.errs = append(w.errs, SectorRange{firstSector, sectorCount})
}

// SetHash records a digest of the media for the hash and digest sections, which hold MD5 and
// SHA1 only (others are not stored).
func (w *Writer) SetHash(name digest.Name, sum []byte) {
	w.hashes[name] = append([]byte(nil), sum...)
}

// heldMax is how many full chunks Write assembles before encoding them together: a logical image
// is mostly small files, and chunks encoded one by one as each filled used one core.
const heldMax = 64

// Write cuts p into chunks and writes them in order. Every chunk is copied and held until heldMax
// of them can be encoded together, on GOMAXPROCS workers on another goroutine while Write goes on
// (one batch in flight); Checkpoint and Close write what is held. Large writes take the same path:
// encoded where they were written, they kept the caller waiting for the workers of every batch,
// and copying a chunk costs a hundredth of encoding it. Write does not mix with
// EncodeChunk/WriteChunk.
func (w *Writer) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if w.pend == nil {
			w.pend = w.chunkBuf()
		}
		k := min(w.chunkSize-len(w.pend), len(p))
		w.pend = append(w.pend, p[:k]...)
		p = p[k:]
		if len(w.pend) == w.chunkSize {
			w.held = append(w.held, w.pend)
			w.pend = nil
			if len(w.held) == heldMax {
				if err := w.writeHeld(); err != nil {
					return 0, err
				}
			}
		}
	}
	return n, nil
}

// writeHeld starts encoding the held chunks in place of the batch in flight, then writes that
// batch: its writes (and the disk's time) overlap the next batch's encoding instead of leaving the
// encoders idle. The batch in flight is waited for first, so that the stream hashes take the
// batches in order.
func (w *Writer) writeHeld() error {
	prev, prevDone, prevBatch := w.flight, w.done, &w.batches[w.cur]
	if prevDone != nil {
		<-prevDone
	}
	w.flight, w.done = nil, nil
	if len(w.held) > 0 {
		w.cur ^= 1
		w.encodeHeld(&w.batches[w.cur])
		w.held = nil
	}
	if prevDone == nil {
		return nil
	}
	err := prevBatch.WriteOut(w, prev)
	w.recycle(prev)
	if w.held == nil {
		w.held = prev[:0] // the next batch assembles in the written one's slice
	}
	return err
}

// encodeHeld puts the held chunks in flight: encoded by b on other goroutines, and fed to the
// stream hashes.
func (w *Writer) encodeHeld(b *chunkenc.Batch) {
	batch, done := w.held, make(chan struct{})
	w.flight, w.done = batch, done
	skip := w.hashSkip
	w.hashSkip = 0
	w.opt.start(func() {
		defer close(done)
		var wg sync.WaitGroup
		for _, h := range w.streamHashes {
			wg.Add(1)
			w.opt.start(func() {
				defer wg.Done()
				h.Write(batch[0][skip:])
				for _, c := range batch[1:] {
					h.Write(c)
				}
			})
		}
		b.Encode(w, batch)
		wg.Wait()
	})
}

// flush hands on the partial chunk and writes every chunk held: the stream hashes then hold every
// byte written. Nothing may be written after it but Close.
func (w *Writer) flush() error {
	if len(w.pend) > 0 {
		w.held = append(w.held, w.pend)
		w.pend = nil
	}
	return w.drain()
}

// drain writes the held chunks and the batch in flight: every full chunk Write was given is then
// in the files. The second writeHeld, with nothing held, writes the batch the first put in flight.
func (w *Writer) drain() error {
	if err := w.writeHeld(); err != nil {
		return err
	}
	return w.writeHeld()
}

// chunkBuf is an empty buffer of a chunk's capacity.
func (w *Writer) chunkBuf() []byte {
	if k := len(w.spare); k > 0 {
		b := w.spare[k-1]
		w.spare = w.spare[:k-1]
		return b[:0]
	}
	return make([]byte, 0, w.chunkSize)
}

// recycle keeps chunk buffers of a written batch for chunkBuf.
func (w *Writer) recycle(bufs [][]byte) {
	for _, b := range bufs {
		if len(w.spare) < heldMax {
			w.spare = append(w.spare, b)
		}
	}
}

// Close flushes a pending partial chunk, writes the closing sections and closes the last segment.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	if err := w.flush(); err != nil {
		return err
	}
	w.closed = true
	if w.err != nil {
		if w.f != nil {
			w.f.Close()
		}
		return w.err
	}
	w.endGroup()
	if len(w.extra) > 0 && w.opt.SegmentSize > 0 && w.segHas {
		need := w.trailerReserve(0)
		for _, x := range w.extra {
			need += descSize + x.size
		}
		if w.off+need > w.opt.SegmentSize && w.lastSection("next") == nil && w.closeFile() == nil {
			if err := w.openSegment(); err != nil {
				return err
			}
		}
	}
	if len(w.errs) > 0 {
		b := make([]byte, error2HdrSize, error2HdrSize+8*len(w.errs)+4)
		binary.LittleEndian.PutUint32(b, uint32(len(w.errs)))
		binary.LittleEndian.PutUint32(b[516:], adler32.Checksum(b[:516]))
		for _, e := range w.errs {
			b = binary.LittleEndian.AppendUint32(b, uint32(e.First))
			b = binary.LittleEndian.AppendUint32(b, uint32(e.Count))
		}
		b = binary.LittleEndian.AppendUint32(b, adler32.Checksum(b[error2HdrSize:]))
		w.section("error2", b)
	}
	for _, x := range w.extra {
		w.emitSection(x) // an error stays in w.err, as section's do
	}
	md5, sha1 := w.hashes[digest.MD5], w.hashes[digest.SHA1]
	if md5 != nil || sha1 != nil {
		d := make([]byte, digestSize)
		copy(d, md5)
		copy(d[16:], sha1)
		binary.LittleEndian.PutUint32(d[76:], adler32.Checksum(d[:76]))
		w.section("digest", d)
	}
	if md5 != nil {
		h := make([]byte, hashSize)
		copy(h, md5)
		binary.LittleEndian.PutUint32(h[32:], adler32.Checksum(h[:32]))
		w.section("hash", h)
	}
	w.lastSection("done")
	return w.closeFile()
}

// lastSection writes "next" or "done": like libewf, it points at itself with size 0.
func (w *Writer) lastSection(typ string) error {
	var d [descSize]byte
	putDescriptor(d[:], typ, w.off, 0)
	return w.write(d[:])
}
