// Package aff4 writes and reads AFF4 Standard v1.0 images: a ZIP64 container
// holding an aff4:ImageStream (chunked, compressed, stored in bevies with
// .index members), an aff4:Map onto that stream and symbolic streams, and an
// RDF Turtle description (information.turtle).
//
// The writer is streaming (io.Writer only) with bounded memory: it keeps just
// the index of the bevy being written. The reader handles the Evimetry
// reference images (linear, allocated, read-error, striped, exabyte sparse).
package aff4

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/s2"

	"github.com/evidenced/evidenced/formats/chunkenc"
	"github.com/evidenced/evidenced/formats/digest"
	"github.com/evidenced/evidenced/formats/incompressible"
	"github.com/evidenced/evidenced/formats/lz4block"
)

// Compression method IRIs of the AFF4 standard (the lexicon of the reference implementations).
const (
	uriLZ4     = "https://code.google.com/p/lz4/"
	uriSnappy  = "http://code.google.com/p/snappy/"
	uriDeflate = "https://tools.ietf.org/html/rfc1951"
	uriZlib    = "https://www.ietf.org/rfc/rfc1950.txt"
	uriNone    = "http://aff4.org/Schema#NullCompressor"

	// Older evidenced versions wrote this IRI for deflate; the reader still accepts it.
	uriDeflateOld = "https://www.ietf.org/rfc/rfc1951.txt"

	aff4NS = "http://aff4.org/Schema#"
)

// Options configures a Writer.
type Options struct {
	Compression                                       string        // "lz4" (default), "snappy", "deflate", "none" (or "stored")
	Hashes                                            []digest.Name // informational: the writer stores what SetHash gives
	CaseNumber, EvidenceNumber, Examiner, Description string
	Model, Serial                                     string
	Size                                              int64
	SectorSize                                        int
	ChunkSize                                         int // default 32768
	ChunksPerSegment                                  int // bevy size, default 2048
	Tool                                              string
	AcquiredAt                                        time.Time
}

type mapEntry struct {
	off, length, targetOff uint64
	target                 uint32
}

// Writer produces one AFF4 volume with one disk image.
type Writer struct {
	opt      Options
	zw       *zipWriter
	method   string
	chunk    int
	volume   string
	image    string
	mapURN   string
	stream   string
	modTime  time.Time
	zeroEnc  []byte // precomputed encoding of an all-zero chunk (fast path)
	zeroComp bool

	bevy      int    // current bevy number
	bevyOpen  bool   // the data member of the current bevy is open
	bevyOff   uint64 // bytes written to the current bevy member
	index     []byte // 12-byte entries of the current bevy (only this one in memory)
	nChunks   int    // chunks in the current bevy
	written   int64  // logical bytes of the image stream
	lastShort bool   // a short chunk was written: no more chunks allowed

	readErrs [][2]int64
	hashes   map[string]string
	hashMu   sync.Mutex

	pending []byte // Write: batch buffer of several chunks
	workers int
	batch   chunkenc.Batch
	closed  bool
	err     error

	bufPool sync.Pool // scratch buffers of chunk-bound size
}

func newURN() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return "aff4://" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// memberName percent-encodes a URN the way Evimetry/pyaff4 do for zip
// member names (upper-case hex, '/' kept inside the path part).
func memberName(urn string) string {
	var sb strings.Builder
	for i := 0; i < len(urn); i++ {
		c := urn[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == '~':
			sb.WriteByte(c)
		case c == '/' && strings.HasPrefix(urn, "aff4://") && i >= len("aff4://"):
			sb.WriteByte(c)
		default:
			fmt.Fprintf(&sb, "%%%02X", c)
		}
	}
	return sb.String()
}

// NewWriter starts a volume on w. The first members (container.description,
// version.txt) are written immediately so that readers sniffing the first
// member find the volume URN. Only a w that is also an io.WriterAt (a file)
// gives a container that Checkpoint and Resume can continue.
func NewWriter(w io.Writer, opt Options) (*Writer, error) {
	wr, err := newWriter(opt)
	if err != nil {
		return nil, err
	}
	wr.volume, wr.image, wr.mapURN, wr.stream = newURN(), newURN(), newURN(), newURN()
	wr.zw = newZipWriter(w, wr.modTime)
	if err := wr.member("container.description", []byte(wr.volume)); err != nil {
		return nil, err
	}
	ver := fmt.Sprintf("major=1\nminor=0\ntool=%s\n", wr.opt.Tool)
	if err := wr.member("version.txt", []byte(ver)); err != nil {
		return nil, err
	}
	return wr, nil
}

// CompressionIRI is the AFF4 standard's IRI of a compression name ("lz4", "snappy", "deflate",
// "none" or "stored"); an unknown name is an error, so callers can refuse it before creating files.
func CompressionIRI(name string) (string, error) {
	switch name {
	case "lz4":
		return uriLZ4, nil
	case "snappy":
		return uriSnappy, nil
	case "deflate":
		return uriDeflate, nil
	case "none", "stored":
		return uriNone, nil
	}
	return "", fmt.Errorf("aff4: unknown compression %q (lz4, snappy, deflate, none)", name)
}

// newWriter applies the defaults of opt and prepares the encoders; the container is not started.
func newWriter(opt Options) (*Writer, error) {
	if opt.ChunkSize <= 0 {
		opt.ChunkSize = 32768
	}
	if opt.ChunksPerSegment <= 0 {
		opt.ChunksPerSegment = 2048
	}
	if opt.SectorSize <= 0 {
		opt.SectorSize = 512
	}
	if opt.Compression == "" {
		opt.Compression = "lz4"
	}
	if opt.Compression == "stored" {
		opt.Compression = "none"
	}
	if opt.Tool == "" {
		opt.Tool = "evidenced"
	}
	if opt.AcquiredAt.IsZero() {
		opt.AcquiredAt = time.Now()
	}
	// A bevy is one zip member, and members stay below 4 GiB (see zipWriter).
	if int64(opt.ChunkSize)*int64(opt.ChunksPerSegment) > maxMember-int64(opt.ChunkSize) {
		return nil, fmt.Errorf("aff4: bevies of %d chunks of %d bytes exceed 4 GiB", opt.ChunksPerSegment, opt.ChunkSize)
	}
	wr := &Writer{opt: opt, chunk: opt.ChunkSize, hashes: map[string]string{}}
	var err error
	if wr.method, err = CompressionIRI(opt.Compression); err != nil {
		return nil, err
	}
	bound := wr.bufBound()
	wr.bufPool.New = func() any { b := make([]byte, bound); return &b }
	wr.modTime = opt.AcquiredAt.UTC()
	wr.index = make([]byte, 0, 12*opt.ChunksPerSegment)

	// Precompute the zero chunk once: zero runs are common on disks and the
	// fast path then costs one scan instead of a compressor pass.
	zero := make([]byte, wr.chunk)
	enc, comp, err := wr.compress(nil, zero)
	if err != nil {
		return nil, err
	}
	wr.zeroEnc, wr.zeroComp = append([]byte(nil), enc...), comp
	return wr, nil
}

func (w *Writer) bufBound() int {
	b := w.chunk
	if lb := lz4block.Bound(w.chunk); lb > b {
		b = lb
	}
	if sb := s2.MaxEncodedLen(w.chunk); sb > b {
		b = sb
	}
	return b + 1024
}

func (w *Writer) member(name string, data []byte) error {
	return w.zw.member(name, data)
}

// ChunkSize is the logical size of every chunk but the last.
func (w *Writer) ChunkSize() int { return w.chunk }

// VolumeURN returns the aff4:ZipVolume URN.
func (w *Writer) VolumeURN() string { return w.volume }

// ImageURN returns the aff4:Image URN.
func (w *Writer) ImageURN() string { return w.image }

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

var flatePool = sync.Pool{New: func() any { fw, _ := flate.NewWriter(nil, flate.BestSpeed); return fw }}

type sliceWriter struct{ b []byte }

func (s *sliceWriter) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }

// rawCopy copies src into dst so the result never aliases the caller's
// source buffer, which a pipeline may recycle before WriteChunk.
func rawCopy(dst, src []byte) []byte {
	if cap(dst) < len(src) {
		dst = make([]byte, len(src))
	}
	dst = dst[:len(src)]
	copy(dst, src)
	return dst
}

// compress encodes a full-size chunk; it falls back to raw storage when the
// result is not smaller, because a reader treats "stored length == chunk
// size" as "uncompressed".
func (w *Writer) compress(dst, src []byte) ([]byte, bool, error) {
	var out []byte
	if w.opt.Compression == "deflate" && incompressible.Likely(src) {
		// Random or already compressed: deflate would spend a full pass to store it anyway. lz4
		// and snappy give up on such data about as fast as the sample costs (measured), so they
		// are not sampled.
		return rawCopy(dst, src), false, nil
	}
	switch w.opt.Compression {
	case "lz4":
		n := lz4block.Bound(len(src))
		if cap(dst) < n {
			dst = make([]byte, n)
		}
		dst = dst[:n]
		m, err := lz4block.Compress(dst, src)
		if err != nil {
			return nil, false, err
		}
		if m == 0 { // not smaller: stored as it is
			return rawCopy(dst, src), false, nil
		}
		out = dst[:m]
	case "snappy":
		n := s2.MaxEncodedLen(len(src))
		if cap(dst) < n {
			dst = make([]byte, n)
		}
		out = s2.EncodeSnappy(dst[:n], src)
	case "deflate":
		sw := &sliceWriter{b: dst[:0]}
		fw := flatePool.Get().(*flate.Writer)
		fw.Reset(sw)
		_, err := fw.Write(src)
		if err == nil {
			err = fw.Close()
		}
		flatePool.Put(fw)
		if err != nil {
			return nil, false, err
		}
		out = sw.b
	default:
		return rawCopy(dst, src), false, nil
	}
	if len(out) >= len(src) {
		return rawCopy(dst, src), false, nil
	}
	return out, true, nil
}

// EncodeChunk compresses one chunk. It is safe for concurrent use. The
// result may alias dst or src. A short (last) chunk is zero-padded to the
// chunk size first, as the standard stores every chunk at full size.
func (w *Writer) EncodeChunk(dst, src []byte) ([]byte, bool, error) {
	if len(src) > w.chunk {
		return nil, false, fmt.Errorf("aff4: chunk of %d bytes exceeds chunk size %d", len(src), w.chunk)
	}
	if isZero(src) {
		return w.zeroEnc, w.zeroComp, nil
	}
	if len(src) < w.chunk {
		// Pad in a pooled buffer; the compressed output goes to dst.
		bp := w.bufPool.Get().(*[]byte)
		defer w.bufPool.Put(bp)
		p := (*bp)[:w.chunk]
		copy(p, src)
		clear(p[len(src):])
		enc, comp, err := w.compress(dst, p)
		if err != nil || comp {
			return enc, comp, err
		}
		// Raw: must not return the pooled buffer.
		if cap(dst) < w.chunk {
			dst = make([]byte, w.chunk)
		}
		dst = dst[:w.chunk]
		copy(dst, p)
		return dst, false, nil
	}
	return w.compress(dst, src)
}

// WriteChunk appends an encoded chunk in stream order (single goroutine).
func (w *Writer) WriteChunk(enc []byte, compressed bool, rawLen int) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("aff4: write after Close")
	}
	if w.lastShort {
		return w.fail(errors.New("aff4: chunk after a short (last) chunk"))
	}
	if rawLen <= 0 || rawLen > w.chunk {
		return w.fail(fmt.Errorf("aff4: bad chunk length %d", rawLen))
	}
	if compressed && len(enc) >= w.chunk {
		return w.fail(errors.New("aff4: compressed chunk not smaller than chunk size"))
	}
	if !compressed && len(enc) != w.chunk {
		return w.fail(fmt.Errorf("aff4: raw chunk must be %d bytes, got %d", w.chunk, len(enc)))
	}
	if !w.bevyOpen {
		if err := w.zw.begin(memberName(fmt.Sprintf("%s/%08d", w.stream, w.bevy))); err != nil {
			return w.fail(err)
		}
		w.bevyOpen, w.bevyOff, w.nChunks, w.index = true, 0, 0, w.index[:0]
	}
	if err := w.zw.writeData(enc); err != nil {
		return w.fail(err)
	}
	w.index = binary.LittleEndian.AppendUint64(w.index, w.bevyOff)
	w.index = binary.LittleEndian.AppendUint32(w.index, uint32(len(enc)))
	w.bevyOff += uint64(len(enc))
	w.nChunks++
	w.written += int64(rawLen)
	if rawLen < w.chunk {
		w.lastShort = true
	}
	if w.nChunks == w.opt.ChunksPerSegment {
		return w.finishBevy()
	}
	return nil
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return err
}

// finishBevy closes the current data member and writes its index member.
func (w *Writer) finishBevy() error {
	if !w.bevyOpen {
		return nil
	}
	if err := w.zw.end(); err != nil {
		return w.fail(err)
	}
	name := memberName(fmt.Sprintf("%s/%08d.index", w.stream, w.bevy))
	if err := w.member(name, w.index); err != nil {
		return w.fail(err)
	}
	w.bevyOpen = false
	w.bevy++
	return nil
}

// Write is a convenience path: data is copied into a batch buffer of
// several chunks (io.Writer must not retain p), and each full batch is
// compressed on GOMAXPROCS goroutines and appended in order.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errors.New("aff4: write after Close")
	}
	if w.pending == nil {
		w.workers = runtime.GOMAXPROCS(0)
		w.pending = make([]byte, 0, w.workers*8*w.chunk)
	}
	n := 0
	for len(p) > 0 {
		k := copy(w.pending[len(w.pending):cap(w.pending)], p)
		w.pending = w.pending[:len(w.pending)+k]
		p = p[k:]
		n += k
		if len(w.pending) == cap(w.pending) {
			if err := w.flushPending(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// flushPending encodes all buffered data (the last chunk may be short).
func (w *Writer) flushPending() error {
	data := w.pending
	nc := (len(data) + w.chunk - 1) / w.chunk
	if nc == 0 {
		return nil
	}
	chunks := make([][]byte, nc)
	for i := range chunks {
		chunks[i] = data[i*w.chunk : min(len(data), (i+1)*w.chunk)]
	}
	if w.batch.BufSize == 0 {
		w.batch.BufSize = w.bufBound()
	}
	err := w.batch.Write(w, chunks)
	w.pending = w.pending[:0]
	return err
}

// AddReadError records a region that could not be read; the map points it
// at aff4:UnreadableData so readers show it as such.
func (w *Writer) AddReadError(offset, length int64) {
	if length > 0 {
		w.readErrs = append(w.readErrs, [2]int64{offset, length})
	}
}

// SetHash records a hash of the whole source.
func (w *Writer) SetHash(name digest.Name, sum []byte) {
	w.hashMu.Lock()
	w.hashes[string(name)] = hex.EncodeToString(sum)
	w.hashMu.Unlock()
}

// buildMap turns the linear image plus read errors into sorted,
// non-overlapping map entries. Target 0 = image stream, 1 = UnreadableData.
func (w *Writer) buildMap(size int64) []mapEntry {
	errs := append([][2]int64(nil), w.readErrs...)
	sort.Slice(errs, func(i, j int) bool { return errs[i][0] < errs[j][0] })
	var out []mapEntry
	pos := int64(0)
	add := func(from, to int64, target uint32) {
		if to > from {
			out = append(out, mapEntry{uint64(from), uint64(to - from), uint64(from), target})
		}
	}
	for _, e := range errs {
		s, end := max(e[0], pos), min(e[0]+e[1], size)
		if end <= s {
			continue
		}
		add(pos, s, 0)
		add(s, end, 1)
		pos = end
	}
	add(pos, size, 0)
	return out
}

// Close flushes the last chunk and writes the index, map, turtle and the
// central directory. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	if w.err != nil {
		w.closed = true
		return w.err
	}
	if len(w.pending) > 0 {
		if err := w.flushPending(); err != nil {
			return err
		}
	}
	w.closed = true
	if err := w.finishBevy(); err != nil {
		return err
	}
	size := w.written
	entries := w.buildMap(size)
	mb := make([]byte, 0, 28*len(entries))
	for _, e := range entries {
		mb = binary.LittleEndian.AppendUint64(mb, e.off)
		mb = binary.LittleEndian.AppendUint64(mb, e.length)
		mb = binary.LittleEndian.AppendUint64(mb, e.targetOff)
		mb = binary.LittleEndian.AppendUint32(mb, e.target)
	}
	if err := w.member(memberName(w.mapURN+"/map"), mb); err != nil {
		return w.fail(err)
	}
	idx := w.stream + "\n" + aff4NS + "UnreadableData\n"
	if err := w.member(memberName(w.mapURN+"/idx"), []byte(idx)); err != nil {
		return w.fail(err)
	}
	if err := w.member("information.turtle", []byte(w.turtle(size))); err != nil {
		return w.fail(err)
	}
	return w.fail(w.zw.close(w.volume))
}

func lit(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func (w *Writer) hashLines(b *bytes.Buffer) {
	names := make([]string, 0, len(w.hashes))
	for k := range w.hashes {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(b, "    aff4:hash %s^^aff4:%s ;\n", lit(w.hashes[k]), k)
	}
}

func (w *Writer) turtle(size int64) string {
	var b bytes.Buffer
	ts := w.opt.AcquiredAt.UTC().Format("2006-01-02T15:04:05.000Z")
	b.WriteString("@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .\n")
	b.WriteString("@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n")
	b.WriteString("@prefix aff4: <http://aff4.org/Schema#> .\n\n")
	fmt.Fprintf(&b, "<%s>\n    a aff4:ZipVolume ;\n    aff4:interface aff4:Volume ;\n", w.volume)
	fmt.Fprintf(&b, "    aff4:creationTime %q^^xsd:dateTime ;\n", ts)
	fmt.Fprintf(&b, "    aff4:contains <%s> , <%s> , <%s> ;\n", w.image, w.mapURN, w.stream)
	fmt.Fprintf(&b, "    aff4:tool %s .\n\n", lit(w.opt.Tool))

	fmt.Fprintf(&b, "<%s>\n    a aff4:ImageStream ;\n", w.stream)
	fmt.Fprintf(&b, "    aff4:chunkSize \"%d\"^^xsd:int ;\n", w.chunk)
	fmt.Fprintf(&b, "    aff4:chunksInSegment \"%d\"^^xsd:int ;\n", w.opt.ChunksPerSegment)
	fmt.Fprintf(&b, "    aff4:compressionMethod <%s> ;\n", w.method)
	fmt.Fprintf(&b, "    aff4:size \"%d\"^^xsd:long ;\n", size)
	fmt.Fprintf(&b, "    aff4:version \"1\"^^xsd:int ;\n")
	fmt.Fprintf(&b, "    aff4:target <%s> ;\n", w.mapURN)
	fmt.Fprintf(&b, "    aff4:stored <%s> .\n\n", w.volume)

	fmt.Fprintf(&b, "<%s>\n    a aff4:Map ;\n", w.mapURN)
	fmt.Fprintf(&b, "    aff4:size \"%d\"^^xsd:long ;\n", size)
	fmt.Fprintf(&b, "    aff4:mapGapDefaultStream aff4:Zero ;\n")
	fmt.Fprintf(&b, "    aff4:dependentStream <%s> ;\n", w.stream)
	fmt.Fprintf(&b, "    aff4:mapDataStream <%s> ;\n", w.mapURN+"/map")
	fmt.Fprintf(&b, "    aff4:mapIdxStream <%s> ;\n", w.mapURN+"/idx")
	w.hashLines(&b)
	fmt.Fprintf(&b, "    aff4:target <%s> ;\n", w.image)
	fmt.Fprintf(&b, "    aff4:stored <%s> .\n\n", w.volume)

	fmt.Fprintf(&b, "<%s>\n    a aff4:Image , aff4:DiskImage , aff4:ContiguousImage ;\n", w.image)
	fmt.Fprintf(&b, "    aff4:size \"%d\"^^xsd:long ;\n", size)
	fmt.Fprintf(&b, "    aff4:sectorSize \"%d\"^^xsd:int ;\n", w.opt.SectorSize)
	fmt.Fprintf(&b, "    aff4:blockSize \"%d\"^^xsd:int ;\n", w.opt.SectorSize)
	fmt.Fprintf(&b, "    aff4:sectorCount \"%d\"^^xsd:long ;\n", size/int64(w.opt.SectorSize))
	if w.opt.Size > 0 {
		fmt.Fprintf(&b, "    aff4:deviceSize \"%d\"^^xsd:long ;\n", w.opt.Size)
	}
	if w.opt.Model != "" {
		fmt.Fprintf(&b, "    aff4:diskModel %s ;\n", lit(w.opt.Model))
	}
	if w.opt.Serial != "" {
		fmt.Fprintf(&b, "    aff4:diskSerial %s ;\n", lit(w.opt.Serial))
	}
	state := "Completed Normally"
	if len(w.readErrs) > 0 {
		state = "Completed With Read Errors"
	}
	fmt.Fprintf(&b, "    aff4:acquisitionCompletionState %s ;\n", lit(state))
	fmt.Fprintf(&b, "    aff4:dataStream <%s> ;\n", w.mapURN)
	w.hashLines(&b)
	fmt.Fprintf(&b, "    aff4:stored <%s> .\n\n", w.volume)

	cd := newURN()
	fmt.Fprintf(&b, "<%s>\n    a aff4:CaseDetails ;\n", cd)
	if w.opt.CaseNumber != "" {
		fmt.Fprintf(&b, "    aff4:caseNumber %s ;\n", lit(w.opt.CaseNumber))
	}
	if w.opt.EvidenceNumber != "" {
		fmt.Fprintf(&b, "    aff4:evidenceNumber %s ;\n", lit(w.opt.EvidenceNumber))
	}
	if w.opt.Examiner != "" {
		fmt.Fprintf(&b, "    aff4:examiner %s ;\n", lit(w.opt.Examiner))
	}
	if w.opt.Description != "" {
		fmt.Fprintf(&b, "    aff4:caseDescription %s ;\n", lit(w.opt.Description))
	}
	fmt.Fprintf(&b, "    aff4:target <%s> ;\n", w.image)
	fmt.Fprintf(&b, "    aff4:stored <%s> .\n\n", w.volume)

	fmt.Fprintf(&b, "<%s>\n    a aff4:TimeStamps ;\n", newURN())
	fmt.Fprintf(&b, "    aff4:startTime %q^^xsd:dateTime ;\n", ts)
	fmt.Fprintf(&b, "    aff4:operation \"CAPTURE\" ;\n")
	fmt.Fprintf(&b, "    aff4:target <%s> ;\n", w.image)
	fmt.Fprintf(&b, "    aff4:stored <%s> .\n", w.volume)
	for i, e := range w.readErrs {
		_ = i
		fmt.Fprintf(&b, "\n<%s>\n    a aff4:ReadError ;\n    aff4:offset \"%d\"^^xsd:long ;\n    aff4:length \"%d\"^^xsd:long ;\n    aff4:target <%s> .\n", newURN(), e[0], e[1], w.image)
	}
	return b.String()
}
