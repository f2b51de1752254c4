package target

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/testenv"
)

// tcpProxy stands between the SMB client and smbd like a switch: it can cut every connection it
// carries (with a reset, as a dropped link or a restarted server looks to the client), stop
// accepting new ones (the server is gone), or stop passing data while keeping the connections
// open (a server that hangs).
type tcpProxy struct {
	t      *testing.T
	ln     net.Listener
	target string

	fwd      atomic.Int64 // bytes forwarded, both ways
	accepted atomic.Int32
	stalled  atomic.Bool
	closed   atomic.Bool

	mu     sync.Mutex
	conns  map[net.Conn]bool
	cutAt  int64  // act once fwd reaches this; 0 = not armed
	action string // cut, refuse (cut and stop listening), stall
	cuts   chan time.Time
}

func startProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, ln: ln, target: target, conns: map[net.Conn]bool{}, cuts: make(chan time.Time, 4)}
	go p.serve()
	t.Cleanup(func() { p.closed.Store(true); ln.Close(); p.cutAll() })
	return p
}

func (p *tcpProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.accepted.Add(1)
		p.mu.Lock()
		p.conns[c], p.conns[s] = true, true
		p.mu.Unlock()
		go p.pipe(s, c)
		go p.pipe(c, s)
	}
}

func (p *tcpProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 256<<10)
	for {
		// A stalled proxy stops reading: the sender's socket fills and its writes block, as
		// with a server that no longer takes anything.
		for p.stalled.Load() && !p.closed.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
			p.maybeCut(p.fwd.Add(int64(n)))
		}
		if err != nil {
			src.Close()
			dst.Close()
			return
		}
	}
}

// arm acts once after more bytes have gone through: "cut" every connection, "refuse" (cut
// and stop listening, so that reconnecting is refused) or "stall" (stop passing data, on the open
// connections and on any new one).
func (p *tcpProxy) arm(more int64, action string) {
	p.mu.Lock()
	p.cutAt, p.action = p.fwd.Load()+more, action
	p.mu.Unlock()
}

func (p *tcpProxy) maybeCut(fwd int64) {
	p.mu.Lock()
	if p.cutAt == 0 || fwd < p.cutAt {
		p.mu.Unlock()
		return
	}
	p.cutAt = 0
	action := p.action
	if action == "refuse" {
		p.ln.Close()
	}
	p.mu.Unlock()
	if action == "stall" {
		p.stalled.Store(true)
	} else {
		p.cutAll()
	}
	p.cuts <- time.Now()
}

func (p *tcpProxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // a reset, not an orderly close
		}
		c.Close()
		delete(p.conns, c)
	}
}

// writeData writes data in 4 MiB pieces and closes, giving up at the first error.
func writeData(tg Target, name string, data []byte) error {
	f, err := tg.Create(name)
	if err != nil {
		return err
	}
	for off := 0; off < len(data) && err == nil; off += 4 << 20 {
		_, err = f.Write(data[off:min(off+4<<20, len(data))])
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// withDeadline runs fn and fails the test if it does not return in time (a hung write is the bug
// this file is about); else fn's error and when it came back.
func withDeadline(t *testing.T, d time.Duration, what string, fn func() error) (time.Time, error) {
	t.Helper()
	type res struct {
		at  time.Time
		err error
	}
	ch := make(chan res, 1)
	go func() { err := fn(); ch <- res{time.Now(), err} }()
	select {
	case r := <-ch:
		return r.at, r.err
	case <-time.After(d):
		t.Fatalf("%s: no return after %v", what, d)
		return time.Time{}, nil
	}
}

// A connection dropped in the middle of a large write is re-established and the file on the share
// is byte-identical to what was written; a share that stays gone fails the write after the retries
// with an error naming the share, in bounded time.
func TestSMBDroppedConnection(t *testing.T) {
	share := t.TempDir()
	srv := testenv.StartSMBD(t, share)
	px := startProxy(t, srv.Addr())
	sp := smbSpec(srv, "drop")
	sp.MountOptions = fmt.Sprintf("port=%d", px.port())
	tg, err := OpenSMB(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 96<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}

	// Once, in the middle: the writes in flight fail, one reconnects, all rewrite their bytes.
	px.arm(32<<20, "cut")
	start := time.Now()
	_, err = withDeadline(t, 60*time.Second, "write across a dropped connection", func() error {
		return writeData(tg, "a.raw", data)
	})
	if err != nil {
		t.Fatalf("write across a dropped connection: %v", err)
	}
	select {
	case <-px.cuts:
	default:
		t.Fatal("the proxy never cut the connection: the test proves nothing")
	}
	if n := px.accepted.Load(); n < 2 {
		t.Fatalf("%d connections: the client did not reconnect", n)
	}
	got, err := os.ReadFile(filepath.Join(share, "drop", "a.raw"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the file on the share differs from what was written (%d of %d bytes, %v)", len(got), len(data), err)
	}
	t.Logf("96 MiB with one dropped connection in %v, %d connections", time.Since(start).Round(time.Millisecond), px.accepted.Load())
	got = nil

	// Reading it back (verification) rides out a drop as well.
	px.arm(32<<20, "cut")
	_, err = withDeadline(t, 60*time.Second, "read across a dropped connection", func() error {
		rf, err := tg.Open("a.raw")
		if err != nil {
			return err
		}
		defer rf.Close()
		got, err = io.ReadAll(rf)
		return err
	})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back across a dropped connection: %d of %d bytes, %v", len(got), len(data), err)
	}
	select {
	case <-px.cuts:
	default:
		t.Fatal("the proxy never cut the connection while reading")
	}
	if n := px.accepted.Load(); n < 3 {
		t.Fatalf("%d connections: the reader did not reconnect", n)
	}
	got = nil

	// Then for good: cut and refuse. The retries take their backoff (about 8 s by default), then
	// the error comes back; nothing may hang.
	px.arm(16<<20, "refuse")
	at, err := withDeadline(t, 60*time.Second, "write to a share that went away", func() error {
		return writeData(tg, "b.raw", data)
	})
	var cut time.Time
	select {
	case cut = <-px.cuts:
	default:
		t.Fatal("the proxy never cut the connection")
	}
	took := at.Sub(cut)
	t.Logf("share gone: error after %v: %v", took.Round(time.Millisecond), err)
	if err == nil || !strings.Contains(err.Error(), "//127.0.0.1/images") || !strings.Contains(err.Error(), "failed after") {
		t.Fatalf("write to a share that went away: %v", err)
	}
	if took < 3*time.Second || took > 25*time.Second {
		t.Fatalf("the write failed %v after the share went away; want the retries' backoff (about 8 s), bounded", took)
	}
	withDeadline(t, 10*time.Second, "closing a target whose share went away", tg.Close)
}

// A server that stops answering (connection open, nothing comes back) does not hang the write: a
// request unanswered for the stall time drops the connection, reconnecting times out, and the
// write fails naming the share.
func TestSMBStalledServer(t *testing.T) {
	share := t.TempDir()
	srv := testenv.StartSMBD(t, share)
	px := startProxy(t, srv.Addr())
	sp := smbSpec(srv, "stall")
	sp.MountOptions = fmt.Sprintf("port=%d", px.port())
	tg, err := OpenSMB(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	tg.stall, tg.dial, tg.attempts, tg.backoff = time.Second, time.Second, 3, 100*time.Millisecond
	data := make([]byte, 48<<20)
	px.arm(8<<20, "stall")
	at, err := withDeadline(t, 60*time.Second, "write to a server that hangs", func() error {
		return writeData(tg, "c.raw", data)
	})
	var stalled time.Time
	select {
	case stalled = <-px.cuts:
	default:
		t.Fatal("the proxy never stalled")
	}
	took := at.Sub(stalled)
	t.Logf("server hangs: error after %v: %v", took.Round(time.Millisecond), err)
	// Stall 1 s, then two reconnects that time out in the negotiation (1 s each), echo probes
	// that go unanswered (smbProbe) and the backoff: well under 15 s.
	if err == nil || !strings.Contains(err.Error(), "//127.0.0.1/images") || took > 15*time.Second {
		t.Fatalf("write to a server that hangs: %v after %v", err, took)
	}
	start := time.Now()
	withDeadline(t, 10*time.Second, "closing a target whose server hangs", tg.Close)
	if d := time.Since(start); d > smbProbe+time.Second {
		t.Fatalf("Close took %v", d)
	}
}
