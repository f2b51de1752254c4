package aff4

import (
	"archive/zip"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/snappy"
	"github.com/pierrec/lz4/v4"

	"github.com/evidenced/evidenced/formats/digest"
)

const rdfType = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"

// member is one zip entry of one volume, addressable at random.
type member struct {
	f  *zip.File
	ra io.ReaderAt // underlying container
}

// Volume is one or more AFF4 containers opened together (a striped set
// spreads one image's streams over several volumes).
type Volume struct {
	URNs    []string
	members map[string]member // decoded member name (URN) -> member
	props   map[string]map[string][]term
	closers []io.Closer
	images  []*Image
	mu      sync.Mutex
	streams map[string]*imageStream
}

// Image is an aff4:Image (disk image) found in the volume(s).
type Image struct {
	URN      string
	Size     int64
	Metadata map[string]string // aff4 property local name -> value (case, evidence, examiner, diskModel, diskSerial...)
	hashes   map[string]string
	data     []string // candidate aff4:dataStream URNs
	v        *Volume
}

// Hashes returns the hashes stored for the image (on the aff4:Image or its
// Map): upper-case algorithm keys, lower-case hex.
func (im *Image) Hashes() map[string]string {
	out := make(map[string]string, len(im.hashes))
	for k, v := range im.hashes {
		out[k] = v
	}
	return out
}

// Images lists the disk images in the volume(s).
func (v *Volume) Images() []*Image { return v.images }

// Close closes files opened by OpenFile/OpenSet.
func (v *Volume) Close() error {
	var err error
	for _, c := range v.closers {
		if e := c.Close(); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// OpenFile opens one .aff4 file.
func OpenFile(path string) (*Volume, error) { return OpenSet(path) }

// OpenSet opens several .aff4 files as one logical set (striped images).
func OpenSet(paths ...string) (*Volume, error) {
	v := newVolume()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			v.Close()
			return nil, err
		}
		v.closers = append(v.closers, f)
		st, err := f.Stat()
		if err != nil {
			v.Close()
			return nil, err
		}
		if err := v.add(f, st.Size()); err != nil {
			v.Close()
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	if err := v.finish(); err != nil {
		v.Close()
		return nil, err
	}
	return v, nil
}

// Open reads one container from r.
func Open(r io.ReaderAt, size int64) (*Volume, error) {
	v := newVolume()
	if err := v.add(r, size); err != nil {
		return nil, err
	}
	if err := v.finish(); err != nil {
		return nil, err
	}
	return v, nil
}

func newVolume() *Volume {
	return &Volume{members: map[string]member{}, props: map[string]map[string][]term{}, streams: map[string]*imageStream{}}
}

func (v *Volume) add(r io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return err
	}
	volURN := strings.TrimSpace(zr.Comment)
	var turtle *zip.File
	for _, f := range zr.File {
		if f.Name == "container.description" {
			rc, err := f.Open()
			if err == nil {
				b, _ := io.ReadAll(io.LimitReader(rc, 4096))
				rc.Close()
				if s := strings.TrimSpace(string(b)); s != "" {
					volURN = s
				}
			}
		}
		if f.Name == "information.turtle" {
			turtle = f
		}
	}
	if turtle == nil {
		return errors.New("aff4: no information.turtle")
	}
	v.URNs = append(v.URNs, volURN)
	for _, f := range zr.File {
		name := f.Name
		if dec, err := url.PathUnescape(name); err == nil {
			name = dec
		}
		// Some writers name members relative to the volume URN.
		if !strings.Contains(name, "://") && volURN != "" {
			v.members[volURN+"/"+name] = member{f, r}
		}
		v.members[name] = member{f, r}
	}
	rc, err := turtle.Open()
	if err != nil {
		return err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return err
	}
	src := string(b)
	if !strings.Contains(src, "@prefix :") && volURN != "" {
		// Files whose ":" prefix is implicit default to the volume.
		src = "@prefix : <" + volURN + "> .\n" + src
	}
	trs, err := parseTurtle(src)
	if err != nil {
		return err
	}
	for _, t := range trs {
		m := v.props[t.s]
		if m == nil {
			m = map[string][]term{}
			v.props[t.s] = m
		}
		m[t.p] = append(m[t.p], t.o)
	}
	return nil
}

func (v *Volume) types(urn string) map[string]bool {
	out := map[string]bool{}
	for _, t := range v.props[urn][rdfType] {
		out[t.val] = true
	}
	return out
}

func (v *Volume) str(urn, prop string) string {
	if ts := v.props[urn][aff4NS+prop]; len(ts) > 0 {
		return ts[0].val
	}
	return ""
}

func (v *Volume) intProp(urn, prop string) int64 {
	n, _ := strconv.ParseInt(v.str(urn, prop), 10, 64)
	return n
}

// hashesOf collects aff4:hash literals typed with a whole-stream algorithm.
func (v *Volume) hashesOf(urn string, into map[string]string) {
	for _, t := range v.props[urn][aff4NS+"hash"] {
		if n, err := digest.Parse(strings.TrimPrefix(t.dtype, aff4NS)); err == nil {
			into[string(n)] = strings.ToLower(t.val)
		}
	}
}

func (v *Volume) finish() error {
	subjects := make([]string, 0, len(v.props))
	for s := range v.props {
		subjects = append(subjects, s)
	}
	sort.Strings(subjects)
	for _, s := range subjects {
		if !v.types(s)[aff4NS+"Image"] {
			continue
		}
		im := &Image{URN: s, Size: v.intProp(s, "size"), Metadata: map[string]string{}, hashes: map[string]string{}, v: v}
		for p, ts := range v.props[s] {
			if strings.HasPrefix(p, aff4NS) && len(ts) > 0 && p != aff4NS+"hash" && !ts[0].isIRI {
				im.Metadata[strings.TrimPrefix(p, aff4NS)] = ts[0].val
			}
		}
		for _, t := range v.props[s][aff4NS+"dataStream"] {
			im.data = append(im.data, t.val)
			v.hashesOf(t.val, im.hashes)
		}
		v.hashesOf(s, im.hashes)
		// Case metadata lives on resources that target the image.
		for _, o := range subjects {
			tt := v.types(o)
			if !tt[aff4NS+"CaseDetails"] && !tt[aff4NS+"CaseNotes"] {
				continue
			}
			for _, t := range v.props[o][aff4NS+"target"] {
				if t.val != s {
					continue
				}
				for p, ts := range v.props[o] {
					if strings.HasPrefix(p, aff4NS) && len(ts) > 0 && !ts[0].isIRI {
						k := strings.TrimPrefix(p, aff4NS)
						if _, ok := im.Metadata[k]; !ok {
							im.Metadata[k] = ts[0].val
						}
					}
				}
			}
		}
		if im.Size == 0 {
			for _, d := range im.data {
				if n := v.intProp(d, "size"); n > 0 {
					im.Size = n
					break
				}
			}
		}
		v.images = append(v.images, im)
	}
	if len(v.images) == 0 {
		return errors.New("aff4: no aff4:Image in volume")
	}
	return nil
}

// Open gives random access to the image's data through its aff4:Map (or
// directly the ImageStream when the data stream is one).
func (im *Image) Open() (io.ReaderAt, error) {
	var firstErr error
	for _, d := range im.data {
		ra, _, err := im.v.OpenStream(d)
		if err == nil {
			return ra, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("aff4: image %s has no dataStream", im.URN)
	}
	return nil, firstErr
}

// StreamHashes returns the stored hashes of any stream URN.
func (v *Volume) StreamHashes(urn string) map[string]string {
	m := map[string]string{}
	v.hashesOf(urn, m)
	return m
}

// ImageStreams lists the aff4:ImageStream URNs described in the volume(s)
// that have data in them.
func (v *Volume) ImageStreams() []string {
	var out []string
	for s := range v.props {
		if v.types(s)[aff4NS+"ImageStream"] && v.str(s, "chunkSize") != "" {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// OpenStream opens a Map, ImageStream or symbolic stream by URN and returns
// its size (-1 for unbounded symbolic streams).
func (v *Volume) OpenStream(urn string) (io.ReaderAt, int64, error) {
	if s, ok := symbolic(urn); ok {
		return s, -1, nil
	}
	t := v.types(urn)
	switch {
	case t[aff4NS+"Map"]:
		m, err := v.openMap(urn)
		if err != nil {
			return nil, 0, err
		}
		return m, m.size, nil
	case t[aff4NS+"ImageStream"]:
		s, err := v.openImageStream(urn)
		if err != nil {
			return nil, 0, err
		}
		return s, s.size, nil
	}
	return nil, 0, fmt.Errorf("aff4: unknown stream %s", urn)
}

// ---- symbolic streams ----

type patternStream struct{ pat []byte }

func (p patternStream) ReadAt(b []byte, off int64) (int, error) {
	if len(p.pat) == 1 {
		c := p.pat[0]
		for i := range b {
			b[i] = c
		}
		return len(b), nil
	}
	n := int64(len(p.pat))
	for i := range b {
		b[i] = p.pat[(off+int64(i))%n]
	}
	return len(b), nil
}

// symbolicPatterns are the fixed symbolic streams of the standard (c-aff4
// and pyaff4 agree on the repeated strings).
var symbolicPatterns = map[string][]byte{
	"Zero":           {0},
	"FFDevice":       {0xff},
	"UnknownData":    []byte("UNKNOWN"),
	"UnreadableData": []byte("UNREADABLEDATA"),
}

// tile repeats a multi-byte pattern into a 1 MiB tile that restarts at
// every MiB of the target stream: that is how pyaff4 (whose hashes the
// reference images are checked against) reads UnknownData/UnreadableData.
func tile(pat []byte) []byte {
	if len(pat) == 1 {
		return pat
	}
	tileMu.Lock()
	defer tileMu.Unlock()
	if t, ok := tiles[string(pat)]; ok {
		return t
	}
	t := make([]byte, 1<<20)
	for i := 0; i < len(t); i += copy(t[i:], pat) {
	}
	tiles[string(pat)] = t
	return t
}

var (
	tileMu sync.Mutex
	tiles  = map[string][]byte{} // shared read-only 1 MiB tiles
)

func symbolic(urn string) (io.ReaderAt, bool) {
	name, ok := strings.CutPrefix(urn, aff4NS)
	if !ok {
		return nil, false
	}
	if pat, ok := symbolicPatterns[name]; ok {
		return patternStream{tile(pat)}, true
	}
	if hx, ok := strings.CutPrefix(name, "SymbolicStream"); ok && len(hx) == 2 {
		if c, err := strconv.ParseUint(hx, 16, 8); err == nil {
			return patternStream{[]byte{byte(c)}}, true
		}
	}
	return nil, false
}

// ---- members ----

func (v *Volume) member(name string) (member, bool) {
	m, ok := v.members[name]
	return m, ok
}

// section returns random access to a member's bytes: stored members are
// read in place; deflated ones (not written by AFF4 tools, but legal zip)
// are inflated into memory.
func (m member) section() (io.ReaderAt, int64, error) {
	if m.f.Method == zip.Store {
		off, err := m.f.DataOffset()
		if err != nil {
			return nil, 0, err
		}
		n := int64(m.f.UncompressedSize64)
		return io.NewSectionReader(m.ra, off, n), n, nil
	}
	rc, err := m.f.Open()
	if err != nil {
		return nil, 0, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, 0, err
	}
	return bytes.NewReader(b), int64(len(b)), nil
}

func (m member) readAll() ([]byte, error) {
	rc, err := m.f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// ---- image stream ----

type imageStream struct {
	v        *Volume
	urn      string
	size     int64
	chunk    int64
	perSeg   int64
	method   string
	mu       sync.Mutex
	idxCache map[int64][]byte // bevy -> index bytes (small; bounded below)
	cacheN   int64            // chunk number in cache
	cache    []byte
	cacheOK  bool
	bevyData map[int64]io.ReaderAt
}

func (v *Volume) openImageStream(urn string) (*imageStream, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.streams[urn]; ok {
		return s, nil
	}
	s := &imageStream{v: v, urn: urn, size: v.intProp(urn, "size"), chunk: v.intProp(urn, "chunkSize"),
		perSeg: v.intProp(urn, "chunksInSegment"), method: v.str(urn, "compressionMethod"),
		idxCache: map[int64][]byte{}, bevyData: map[int64]io.ReaderAt{}}
	if s.chunk <= 0 {
		s.chunk = 32768
	}
	if s.perSeg <= 0 {
		s.perSeg = 1024
	}
	if _, ok := v.member(fmt.Sprintf("%s/%08d", urn, 0)); !ok && s.size > 0 {
		return nil, fmt.Errorf("aff4: stream %s has no data in this volume set", urn)
	}
	v.streams[urn] = s
	return s, nil
}

func (s *imageStream) bevy(n int64) ([]byte, io.ReaderAt, error) {
	if idx, ok := s.idxCache[n]; ok {
		return idx, s.bevyData[n], nil
	}
	dm, ok := s.v.member(fmt.Sprintf("%s/%08d", s.urn, n))
	if !ok {
		return nil, nil, fmt.Errorf("aff4: missing bevy %d of %s", n, s.urn)
	}
	im, ok := s.v.member(fmt.Sprintf("%s/%08d.index", s.urn, n))
	if !ok {
		return nil, nil, fmt.Errorf("aff4: missing index of bevy %d of %s", n, s.urn)
	}
	idx, err := im.readAll()
	if err != nil {
		return nil, nil, err
	}
	data, _, err := dm.section()
	if err != nil {
		return nil, nil, err
	}
	if len(s.idxCache) >= 64 { // keep memory bounded for huge images
		clear(s.idxCache)
		clear(s.bevyData)
	}
	s.idxCache[n], s.bevyData[n] = idx, data
	return idx, data, nil
}

// chunkAt returns the decoded chunk n; the result is valid until the next call.
func (s *imageStream) chunkAt(n int64) ([]byte, error) {
	if s.cacheOK && s.cacheN == n {
		return s.cache, nil
	}
	idx, data, err := s.bevy(n / s.perSeg)
	if err != nil {
		return nil, err
	}
	i := n % s.perSeg
	if (i+1)*12 > int64(len(idx)) {
		return nil, fmt.Errorf("aff4: chunk %d beyond index of %s", n, s.urn)
	}
	off := int64(binary.LittleEndian.Uint64(idx[i*12:]))
	ln := int64(binary.LittleEndian.Uint32(idx[i*12+8:]))
	raw := make([]byte, ln)
	if _, err := data.ReadAt(raw, off); err != nil && !(err == io.EOF) {
		return nil, err
	}
	out, err := s.decode(raw)
	if err != nil {
		return nil, fmt.Errorf("aff4: chunk %d of %s: %w", n, s.urn, err)
	}
	s.cache, s.cacheN, s.cacheOK = out, n, true
	return out, nil
}

func (s *imageStream) decode(raw []byte) ([]byte, error) {
	if int64(len(raw)) == s.chunk {
		return raw, nil // stored uncompressed by definition
	}
	switch s.method {
	case uriNone, "", aff4NS + "nullCompressor":
		return raw, nil
	case uriSnappy, "https://code.google.com/p/snappy/", "http://google.github.io/snappy/", "https://github.com/google/snappy":
		return snappy.Decode(make([]byte, s.chunk), raw)
	case uriLZ4, "http://code.google.com/p/lz4/":
		out := make([]byte, s.chunk)
		n, err := lz4.UncompressBlock(raw, out)
		return out[:n], err
	case uriDeflate, uriDeflateOld, "http://www.ietf.org/rfc/rfc1951.txt":
		return io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(raw)), s.chunk))
	case uriZlib, "http://www.ietf.org/rfc/rfc1950.txt":
		zr, err := zlib.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(io.LimitReader(zr, s.chunk))
	}
	return nil, fmt.Errorf("unsupported compression %q", s.method)
}

func (s *imageStream) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("aff4: negative offset")
	}
	if off >= s.size {
		return 0, io.EOF
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for n < len(p) && off < s.size {
		c, err := s.chunkAt(off / s.chunk)
		if err != nil {
			return n, err
		}
		in := off % s.chunk
		if in >= int64(len(c)) {
			return n, fmt.Errorf("aff4: short chunk %d of %s", off/s.chunk, s.urn)
		}
		k := copy(p[n:], c[in:min(int64(len(c)), in+s.size-off)])
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// ---- map ----

type mapStream struct {
	size    int64
	entries []mapEntry // sorted by off, non-overlapping
	targets []io.ReaderAt
	gap     io.ReaderAt
}

func (v *Volume) openMap(urn string) (*mapStream, error) {
	mm, ok := v.member(urn + "/map")
	if !ok {
		return nil, fmt.Errorf("aff4: map %s has no map member", urn)
	}
	im, ok := v.member(urn + "/idx")
	if !ok {
		return nil, fmt.Errorf("aff4: map %s has no idx member", urn)
	}
	mb, err := mm.readAll()
	if err != nil {
		return nil, err
	}
	ib, err := im.readAll()
	if err != nil {
		return nil, err
	}
	m := &mapStream{size: v.intProp(urn, "size")}
	for _, line := range strings.Split(string(ib), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		ra, _, err := v.OpenStream(line)
		if err != nil {
			ra = errStream{err}
		}
		m.targets = append(m.targets, ra)
	}
	m.gap = patternStream{[]byte{0}}
	if g := v.str(urn, "mapGapDefaultStream"); g != "" {
		if ra, ok := symbolic(g); ok {
			m.gap = ra
		} else if ra, _, err := v.OpenStream(g); err == nil {
			m.gap = ra
		}
	}
	for i := 0; i+28 <= len(mb); i += 28 {
		e := mapEntry{binary.LittleEndian.Uint64(mb[i:]), binary.LittleEndian.Uint64(mb[i+8:]),
			binary.LittleEndian.Uint64(mb[i+16:]), binary.LittleEndian.Uint32(mb[i+24:])}
		if e.length == 0 {
			continue
		}
		if int(e.target) >= len(m.targets) {
			return nil, fmt.Errorf("aff4: map %s: target %d out of range", urn, e.target)
		}
		m.entries = append(m.entries, e)
	}
	sort.SliceStable(m.entries, func(i, j int) bool { return m.entries[i].off < m.entries[j].off })
	// Later entries win on overlap: trim earlier ones (rare; keeps lookup simple).
	for i := 1; i < len(m.entries); i++ {
		prev := &m.entries[i-1]
		if prev.off+prev.length > m.entries[i].off {
			prev.length = m.entries[i].off - prev.off
		}
	}
	if m.size == 0 && len(m.entries) > 0 {
		last := m.entries[len(m.entries)-1]
		m.size = int64(last.off + last.length)
	}
	return m, nil
}

type errStream struct{ err error }

func (e errStream) ReadAt([]byte, int64) (int, error) { return 0, e.err }

func (m *mapStream) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("aff4: negative offset")
	}
	if off >= m.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off < m.size {
		want := min(int64(len(p)-n), m.size-off)
		// First entry ending after off.
		i := sort.Search(len(m.entries), func(i int) bool {
			return int64(m.entries[i].off+m.entries[i].length) > off
		})
		var k int64
		if i < len(m.entries) && int64(m.entries[i].off) <= off {
			e := m.entries[i]
			in := off - int64(e.off)
			k = min(want, int64(e.length)-in)
			got, err := m.targets[e.target].ReadAt(p[n:n+int(k)], int64(e.targetOff)+in)
			if got < int(k) {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return n + got, err
			}
		} else {
			end := m.size
			if i < len(m.entries) {
				end = int64(m.entries[i].off)
			}
			k = min(want, end-off)
			if _, err := m.gap.ReadAt(p[n:n+int(k)], off); err != nil && err != io.EOF {
				return n, err
			}
		}
		n += int(k)
		off += k
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
