// Package synthdisk generates deterministic disk-like test data for the size and speed targets of
// the image encoders: a text-heavy disk (mail stores with base64 attachments, logs, documents) and
// a disk full of already-compressed files (gzip, xz-, jpeg- and zip-like). Files are laid out in
// 4 KiB clusters with zeroed slack, as a file system stores them, so chunk-level compressors see
// what they see on real evidence. Nothing is downloaded: the same seed gives the same bytes.
package synthdisk

import (
	"bufio"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"
)

// Kind selects the content of a generated disk.
type Kind string

const (
	// Text is mail (with base64 attachments), logs and prose: data deflate shrinks but fast
	// encoders tuned for matches leave base64 uncompressed.
	Text Kind = "text"
	// Compressed is gzip members, xz-, jpeg- and zip-like files: data no encoder shrinks much.
	Compressed Kind = "compressed"
)

const cluster = 4096

// Write writes size bytes of a disk of the given kind to w.
func Write(w io.Writer, kind Kind, size int64, seed uint64) error {
	g := &gen{r: rand.New(rand.NewPCG(seed, 0x5eed)), size: size}
	g.bw = bufio.NewWriterSize(w, 1<<20)
	var file func() []byte
	switch kind {
	case Text:
		file = g.textFile
	case Compressed:
		file = g.compressedFile
	default:
		return fmt.Errorf("synthdisk: unknown kind %q (text, compressed)", kind)
	}
	for g.n < size {
		if err := g.put(file()); err != nil {
			return err
		}
	}
	return g.bw.Flush()
}

type gen struct {
	r    *rand.Rand
	bw   *bufio.Writer
	n    int64
	size int64
}

// put writes one file and its slack up to the next cluster, cut at the disk's size.
func (g *gen) put(b []byte) error {
	if pad := len(b) % cluster; pad != 0 {
		b = append(b, make([]byte, cluster-pad)...)
	}
	if rest := g.size - g.n; int64(len(b)) > rest {
		b = b[:rest]
	}
	g.n += int64(len(b))
	if _, err := g.bw.Write(b); err != nil {
		return fmt.Errorf("synthdisk: %w", err)
	}
	return nil
}

func (g *gen) random(n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := g.r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

var words = strings.Fields(`the of and to in is that for it as was with be by on not he this are or his
from at which but have an they you were her she there been one all we their has would when if so no
will can more out up about what said its into than them only some could new these two may first then
do any like my now over such our man me even most made after also did many before must through back
years where much your way well down should because each just those people how too little state good
very make world still own see men work long get here between both life being under never day same
another know while last might us great old year off come since against go came right used take three
evidence report meeting invoice account transfer attached please regards thanks contract shipment
server request password customer order payment delivery schedule project budget review draft final`)

func (g *gen) word() string { return words[g.r.IntN(len(words))] }

func (g *gen) prose(n int) string {
	var s strings.Builder
	col := 0
	for s.Len() < n {
		w := g.word()
		if g.r.IntN(12) == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		if col+len(w) > 72 {
			s.WriteString("\r\n")
			col = 0
		} else if col > 0 {
			s.WriteByte(' ')
			col++
		}
		s.WriteString(w)
		col += len(w)
		if g.r.IntN(14) == 0 {
			s.WriteByte('.')
			col++
		}
	}
	return s.String()
}

var epoch = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

func (g *gen) when() time.Time {
	return epoch.Add(time.Duration(g.r.Int64N(int64(400 * 24 * time.Hour))))
}

func (g *gen) addr() string {
	return fmt.Sprintf("%s.%s%d@%s.example", g.word(), g.word(), g.r.IntN(100), g.word())
}

func (g *gen) ip() string {
	return fmt.Sprintf("%d.%d.%d.%d", 10+g.r.IntN(200), g.r.IntN(256), g.r.IntN(256), 1+g.r.IntN(254))
}

// base64Lines wraps the base64 of b in 76-column CRLF lines, as MIME does.
func base64Lines(b []byte) string {
	e := base64.StdEncoding.EncodeToString(b)
	var s strings.Builder
	for len(e) > 76 {
		s.WriteString(e[:76])
		s.WriteString("\r\n")
		e = e[76:]
	}
	s.WriteString(e)
	s.WriteString("\r\n")
	return s.String()
}

// textFile is a mailbox, a log or a document; half the mail volume is base64 attachments.
func (g *gen) textFile() []byte {
	switch k := g.r.IntN(10); {
	case k < 4:
		return g.mailbox()
	case k < 7:
		return g.log()
	case k < 9:
		return []byte(g.prose(2048 + g.r.IntN(96<<10)))
	default: // a PEM/JSON-like blob of base64
		return []byte("{\"data\": \"" + base64.StdEncoding.EncodeToString(g.random(4096+g.r.IntN(128<<10))) + "\"}\n")
	}
}

func (g *gen) mailbox() []byte {
	var s strings.Builder
	for range 1 + g.r.IntN(12) {
		t := g.when()
		from, to := g.addr(), g.addr()
		fmt.Fprintf(&s, "From %s %s\r\nReceived: from mx%d.%s.example ([%s]) by mail.example with ESMTPS id %x; %s\r\n",
			from, t.Format(time.ANSIC), g.r.IntN(9), g.word(), g.ip(), g.r.Uint64(), t.Format(time.RFC1123Z))
		fmt.Fprintf(&s, "From: %s\r\nTo: %s\r\nSubject: %s %s %s\r\nDate: %s\r\nMessage-ID: <%x.%x@%s.example>\r\n",
			from, to, g.word(), g.word(), g.word(), t.Format(time.RFC1123Z), g.r.Uint64(), g.r.Uint32(), g.word())
		b := fmt.Sprintf("b%016x", g.r.Uint64())
		fmt.Fprintf(&s, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=%q\r\n\r\n--%s\r\n", b, b)
		fmt.Fprintf(&s, "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", g.prose(200+g.r.IntN(4000)))
		if g.r.IntN(3) > 0 {
			name := g.word() + ".pdf"
			fmt.Fprintf(&s, "--%s\r\nContent-Type: application/octet-stream; name=%q\r\nContent-Transfer-Encoding: base64\r\n\r\n%s",
				b, name, base64Lines(g.random(2048+g.r.IntN(96<<10))))
		}
		fmt.Fprintf(&s, "--%s--\r\n\r\n", b)
	}
	return []byte(s.String())
}

var (
	verbs    = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	statuses = []int{200, 200, 200, 200, 304, 404, 500, 302}
	daemons  = []string{"sshd", "kernel", "systemd", "cron", "postfix/smtpd", "dhclient"}
)

func (g *gen) log() []byte {
	var s strings.Builder
	t := g.when()
	n := 2048 + g.r.IntN(256<<10)
	web := g.r.IntN(2) == 0
	for s.Len() < n {
		t = t.Add(time.Duration(g.r.IntN(5000)) * time.Millisecond)
		if web {
			fmt.Fprintf(&s, "%s - - [%s] \"%s /%s/%s?id=%d HTTP/1.1\" %d %d \"-\" \"Mozilla/5.0 (%s)\"\n",
				g.ip(), t.Format("02/Jan/2006:15:04:05 -0700"), verbs[g.r.IntN(len(verbs))], g.word(), g.word(),
				g.r.IntN(100000), statuses[g.r.IntN(len(statuses))], g.r.IntN(60000), g.word())
		} else {
			fmt.Fprintf(&s, "%s host%d %s[%d]: %s %s %s from %s port %d\n", t.Format(time.Stamp), g.r.IntN(4),
				daemons[g.r.IntN(len(daemons))], 100+g.r.IntN(30000), g.word(), g.word(), g.word(), g.ip(), 1024+g.r.IntN(60000))
		}
	}
	return []byte(s.String())
}

// compressedFile is a real gzip member of text, or random bytes behind an xz, JPEG or zip header.
func (g *gen) compressedFile() []byte {
	n := 4096 + g.r.IntN(512<<10)
	switch g.r.IntN(4) {
	case 0:
		var b strings.Builder
		z, _ := gzip.NewWriterLevel(&b, gzip.DefaultCompression)
		for b.Len() < n {
			if _, err := z.Write(g.textFile()); err != nil {
				break
			}
		}
		z.Close()
		return []byte(b.String())
	case 1:
		return append([]byte("\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4\x46"), g.random(n)...)
	case 2:
		h := []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xdb\x00\x43\x00")
		return append(append(h, g.random(n)...), 0xff, 0xd9)
	default:
		return append([]byte("PK\x03\x04\x14\x00\x00\x00\x08\x00"), g.random(n)...)
	}
}
