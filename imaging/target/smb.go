package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	smb2 "github.com/cloudsoda/go-smb2"
	"golang.org/x/sys/unix"
)

// DialTimeout bounds connect+negotiate+login so an unknown host or a dead server fails promptly.
const DialTimeout = 5 * time.Second

// Defaults of the retry policy of writes and reads: a dropped connection is retried smbAttempts
// times with a doubling pause starting at smbBackoff (0.25+0.5+1+2+4 s), long enough to ride out
// a switch or server restart, short enough that a share gone for good fails the task in well under
// a minute.
const (
	smbAttempts = 6
	smbBackoff  = 250 * time.Millisecond
	// smbProbe bounds the echo that tells a broken session from a failed request, and the logoff
	// at Close: both may meet a connection that no longer answers.
	smbProbe = 2 * time.Second
	// smbStall is how long a request may go unanswered before the connection is dropped and the
	// retries take over. go-smb2 has no request timeouts of its own: without this a server that
	// hangs (a NAS stuck on a dead disk) would hang the task, and stop-task with it. Windows
	// clients give a server 60 s as well.
	smbStall = 60 * time.Second
	// smbUserTimeout makes the kernel drop a connection whose sent data stays unacknowledged this
	// long (a peer that vanished without a reset), before smbStall would.
	smbUserTimeout = 30 * time.Second
)

// SMB is a folder on a share reached through the user-space SMB2/3 client.
type SMB struct {
	unc  UNC
	addr string
	spec Spec

	// Retry policy (see smbAttempts, smbStall); fields so tests can shorten it.
	attempts int
	backoff  time.Duration
	stall    time.Duration
	dial     time.Duration // bounds each connect: DialTimeout
	// beforeWrite, when set (tests), runs before every attempt of a write at off.
	beforeWrite func(off int64)

	rmu sync.Mutex // serializes reconnects

	mu    sync.Mutex
	sess  *smb2.Session
	share *smb2.Share
	tcp   net.Conn // the session's connection; closing it fails every request waiting on it
	gen   int      // counts successful connects; a handle opened on an older session is stale
}

// OpenSMB logs on to the share and creates the folder.
func OpenSMB(ctx context.Context, spec Spec) (*SMB, error) {
	u, err := ParseUNC(spec.Folder, spec.MountOptions)
	if err != nil {
		return nil, err
	}
	ip, err := ResolveServer(func(n, h string) ([]net.IP, error) {
		c, cancel := context.WithTimeout(ctx, DialTimeout)
		defer cancel()
		return net.DefaultResolver.LookupIP(c, n, h)
	}, u.Server, spec.DNSLookup)
	if err != nil {
		return nil, err
	}
	s := &SMB{unc: u, addr: net.JoinHostPort(ip, strconv.Itoa(u.Port)), spec: spec, attempts: smbAttempts, backoff: smbBackoff, stall: smbStall, dial: DialTimeout}
	if err := s.connect(ctx); err != nil {
		return nil, err
	}
	if u.Dir != "" {
		if err := s.MkdirAll(""); err != nil {
			s.Close()
			return nil, fmt.Errorf("create folder %s: %w", u.Display(""), err)
		}
	}
	return s, nil
}

// shareName is how errors name the share: //server/share.
func (s *SMB) shareName() string { return "//" + s.unc.Server + "/" + s.unc.Share }

func (s *SMB) connect(ctx context.Context) error {
	c, cancel := context.WithTimeout(ctx, s.dial)
	defer cancel()
	d := net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3},
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(smbUserTimeout/time.Millisecond))
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
	conn, err := d.DialContext(c, "tcp", s.addr)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("server %s: connection refused on port %d", s.unc.Server, s.unc.Port)
		}
		return fmt.Errorf("server %s (%s): cannot connect: %v", s.unc.Server, s.addr, scrub(err, s.spec.Password))
	}
	conn.SetDeadline(time.Now().Add(s.dial))
	sd := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: s.spec.Login, Password: s.spec.Password, Domain: s.spec.Domain}}
	sess, err := sd.DialConn(c, conn, s.addr)
	if err != nil {
		conn.Close()
		msg := scrub(err, s.spec.Password)
		if strings.Contains(strings.ToLower(msg), "logon") || strings.Contains(strings.ToLower(msg), "access") || strings.Contains(strings.ToLower(msg), "password") {
			return fmt.Errorf("server %s: access denied for user %q (wrong login, password or domain)", s.unc.Server, s.spec.Login)
		}
		return fmt.Errorf("server %s: SMB session failed: %s", s.unc.Server, msg)
	}
	conn.SetDeadline(time.Time{})
	sh, err := sess.WithContext(c).Mount(s.unc.Share)
	if err != nil {
		hangup(sess, nil, conn)
		msg := scrub(err, s.spec.Password)
		if strings.Contains(strings.ToLower(msg), "access") {
			return fmt.Errorf("share %s: access denied for user %q", s.shareName(), s.spec.Login)
		}
		return fmt.Errorf("share %s does not exist or cannot be opened: %s", s.shareName(), msg)
	}
	s.mu.Lock()
	s.sess, s.share, s.tcp = sess, sh, conn
	s.gen++
	s.mu.Unlock()
	return nil
}

// hangup disconnects the share and logs off if the server answers within smbProbe, and closes
// the connection in any case. The wait is ours, not a context's: a request stuck on a full socket
// holds go-smb2's connection lock, which a logoff would wait for forever.
func hangup(sess *smb2.Session, sh *smb2.Share, tcp net.Conn) error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), smbProbe)
		defer cancel()
		if sh != nil {
			sh.WithContext(ctx).Umount()
		}
		done <- sess.WithContext(ctx).Logoff()
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(smbProbe):
		err = errors.New("no answer to logoff")
	}
	tcp.Close() // also ends the goroutine above if it is still waiting
	return err
}

func scrub(err error, pw string) string {
	m := err.Error()
	if pw != "" {
		m = strings.ReplaceAll(m, pw, "***")
	}
	return m
}

// cur is the current share and the generation of its session.
func (s *SMB) cur() (*smb2.Share, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.share, s.gen
}

// healthy asks the server for an echo: a request failing on a live session must not tear it down
// (other files of the task share it), a dead one must be replaced. As in hangup, the wait is ours.
func (s *SMB) healthy(gen int) bool {
	s.mu.Lock()
	sess, cur := s.sess, s.gen
	s.mu.Unlock()
	if sess == nil || cur != gen {
		return false
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), smbProbe)
		defer cancel()
		done <- sess.WithContext(ctx).Echo()
	}()
	select {
	case err := <-done:
		return err == nil
	case <-time.After(smbProbe):
		return false // the reconnect closes the connection, which ends the echo
	}
}

// reconnect replaces the session of generation gen (after a dropped connection). When another
// caller has already replaced it, the new session is used as it is. The old one is not logged
// off: it is broken, and the server drops it with its connection.
func (s *SMB) reconnect(gen int) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.mu.Lock()
	if s.sess == nil {
		s.mu.Unlock()
		return fmt.Errorf("share %s is closed", s.shareName())
	}
	if s.gen != gen {
		s.mu.Unlock()
		return nil
	}
	s.tcp.Close()
	s.mu.Unlock()
	return s.connect(context.Background())
}

// watch drops the connection of session generation gen if the request about to be sent gets no
// answer within s.stall; stop the timer once it has one.
func (s *SMB) watch(gen int) *time.Timer {
	return time.AfterFunc(s.stall, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.gen == gen && s.tcp != nil {
			s.tcp.Close()
		}
	})
}

// do runs a share operation, and once more on a new session if the first try met a broken
// connection. Writes have their own, longer retry (smbFile.writeRetry).
func (s *SMB) do(fn func(sh *smb2.Share, gen int) error) error {
	try := func() (int, error) {
		sh, gen := s.cur()
		if sh == nil {
			return gen, fmt.Errorf("share %s is closed", s.shareName())
		}
		w := s.watch(gen)
		defer w.Stop()
		return gen, fn(sh, gen)
	}
	gen, err := try()
	if err == nil || s.healthy(gen) {
		return err
	}
	if rerr := s.reconnect(gen); rerr != nil {
		return fmt.Errorf("%w (reconnecting: %v)", err, rerr)
	}
	_, err = try()
	return err
}

// p is the share-relative path with backslashes, as SMB wants it.
func (s *SMB) p(name string) (string, error) {
	rel := path.Clean("/" + s.unc.Dir + "/" + name)
	if dir := "/" + s.unc.Dir; s.unc.Dir != "" && rel != dir && !strings.HasPrefix(rel, dir+"/") {
		return "", fmt.Errorf("file name %q leaves the target folder", name)
	}
	return strings.ReplaceAll(strings.TrimPrefix(rel, "/"), "/", `\`), nil
}

func (s *SMB) Display(name string) string { return s.unc.Display(name) }

func (s *SMB) Create(name string) (File, error) {
	p, err := s.p(name)
	if err != nil {
		return nil, err
	}
	var f *smb2.File
	var gen int
	err = s.do(func(sh *smb2.Share, g int) error {
		gen = g
		f, err = sh.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		return err
	})
	if errors.Is(err, fs.ErrExist) || (err != nil && strings.Contains(err.Error(), "COLLISION")) {
		return nil, fmt.Errorf("%s: %w", s.Display(name), ErrExist)
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %v", s.Display(name), err)
	}
	return newSMBFile(s, name, p, f, gen), nil
}

func (s *SMB) OpenFile(name string) (File, error) {
	p, f, gen, size, err := s.openStat(name, os.O_RDWR)
	if err != nil {
		return nil, err
	}
	sf := newSMBFile(s, name, p, f, gen)
	sf.off = size
	return sf, nil
}

// openStat opens an existing file (retrying once on a new session) and reads its size.
func (s *SMB) openStat(name string, flag int) (p string, f *smb2.File, gen int, size int64, err error) {
	if p, err = s.p(name); err != nil {
		return "", nil, 0, 0, err
	}
	err = s.do(func(sh *smb2.Share, g int) error {
		gen = g
		if f, err = sh.OpenFile(p, flag, 0); err != nil {
			return err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		size = st.Size()
		return nil
	})
	if err != nil {
		return "", nil, 0, 0, fmt.Errorf("open %s: %w", s.Display(name), err)
	}
	return p, f, gen, size, nil
}

// reopenCurrent opens p again on the current session (after a reconnect), under the watchdog.
func (s *SMB) reopenCurrent(p string, flag int) (*smb2.File, int, error) {
	sh, gen := s.cur()
	if sh == nil {
		return nil, 0, fmt.Errorf("share %s is closed", s.shareName())
	}
	w := s.watch(gen)
	defer w.Stop()
	f, err := sh.OpenFile(p, flag, 0)
	return f, gen, err
}

// smbReadFile reads an image back (verification, which takes as long as the imaging did): reads
// ride out a dropped connection like writes do.
type smbReadFile struct {
	s    *SMB
	name string
	p    string
	size int64
	off  int64 // Read's position; Read is not called concurrently

	mu  sync.Mutex
	f   *smb2.File
	gen int
}

func (r *smbReadFile) Size() int64 { return r.size }

func (r *smbReadFile) Read(b []byte) (int, error) {
	n, err := r.ReadAt(b, r.off)
	r.off += int64(n)
	return n, err
}

// ReadAt retries on a new session when the old one broke (the echo probe says which): reading
// again at the same offset is harmless. Errors on a live session (end of file) come back as
// they are.
func (r *smbReadFile) ReadAt(b []byte, off int64) (int, error) {
	backoff := r.s.backoff
	for attempt := 1; ; attempt++ {
		r.mu.Lock()
		h, gen := r.f, r.gen
		r.mu.Unlock()
		w := r.s.watch(gen)
		n, err := h.ReadAt(b, off)
		w.Stop()
		if err == nil || errors.Is(err, io.EOF) || r.s.healthy(gen) {
			return n, err
		}
		if attempt >= r.s.attempts {
			return n, fmt.Errorf("share %s: reading %s at offset %d failed after %d attempts: %s",
				r.s.shareName(), r.s.Display(r.name), off, attempt, scrub(err, r.s.spec.Password))
		}
		time.Sleep(backoff)
		backoff *= 2
		r.reopen(gen) // a failure shows in the next attempt
	}
}

func (r *smbReadFile) reopen(gen int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen != gen {
		return // another reader already did
	}
	if err := r.s.reconnect(gen); err != nil {
		return
	}
	if nf, sgen, err := r.s.reopenCurrent(r.p, os.O_RDONLY); err == nil {
		r.f, r.gen = nf, sgen
	}
}

func (r *smbReadFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}

func (s *SMB) Open(name string) (ReadFile, error) {
	p, f, gen, size, err := s.openStat(name, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	return &smbReadFile{s: s, name: name, p: p, size: size, f: f, gen: gen}, nil
}

func (s *SMB) Truncate(name string, size int64) error {
	p, err := s.p(name)
	if err != nil {
		return err
	}
	return s.do(func(sh *smb2.Share, _ int) error { return sh.Truncate(p, size) })
}

func (s *SMB) Stat(name string) (int64, error) {
	p, err := s.p(name)
	if err != nil {
		return 0, err
	}
	var size int64
	err = s.do(func(sh *smb2.Share, _ int) error {
		st, err := sh.Stat(p)
		if err == nil {
			size = st.Size()
		}
		return err
	})
	return size, err
}

func (s *SMB) Rename(o, n string) error {
	op, err := s.p(o)
	if err != nil {
		return err
	}
	np, err := s.p(n)
	if err != nil {
		return err
	}
	return s.do(func(sh *smb2.Share, _ int) error { return sh.Rename(op, np) })
}

func (s *SMB) Remove(name string) error {
	p, err := s.p(name)
	if err != nil {
		return err
	}
	return s.do(func(sh *smb2.Share, _ int) error { return sh.Remove(p) })
}

// MkdirAll creates each missing level; SMB has no recursive mkdir.
func (s *SMB) MkdirAll(dir string) error {
	p, err := s.p(dir)
	if err != nil {
		return err
	}
	return s.do(func(sh *smb2.Share, _ int) error {
		acc := ""
		for _, part := range strings.Split(p, `\`) {
			if part == "" {
				continue
			}
			if acc != "" {
				acc += `\`
			}
			acc += part
			if err := sh.Mkdir(acc, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				if st, e2 := sh.Stat(acc); e2 == nil && st.IsDir() {
					continue
				}
				return err
			}
		}
		return nil
	})
}

func (s *SMB) Mkdir(dir string) error {
	p, err := s.p(dir)
	if err != nil {
		return err
	}
	err = s.do(func(sh *smb2.Share, _ int) error { return sh.Mkdir(p, 0o755) })
	if errors.Is(err, fs.ErrExist) || (err != nil && strings.Contains(err.Error(), "COLLISION")) {
		return fmt.Errorf("%s: %w", s.Display(dir), ErrExist)
	}
	if err != nil {
		return fmt.Errorf("create folder %s: %v", s.Display(dir), err)
	}
	return nil
}

func (s *SMB) FreeSpace() (int64, error) {
	p, _ := s.p("")
	if p == "" {
		p = "."
	}
	var free int64
	err := s.do(func(sh *smb2.Share, _ int) error {
		fi, err := sh.Statfs(p)
		if err == nil {
			free = int64(fi.FreeBlockCount() * fi.BlockSize() * fi.FragmentSize())
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("free space of %s: %w", s.shareName(), err)
	}
	return free, nil
}

// Close disconnects; bounded, because the connection may already be gone.
func (s *SMB) Close() error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.mu.Lock()
	sess, sh, tcp := s.sess, s.share, s.tcp
	s.sess, s.share, s.tcp = nil, nil, nil
	s.mu.Unlock()
	if sess == nil {
		return nil
	}
	return hangup(sess, sh, tcp)
}

// smbFile pipelines writes: Write and WriteAt copy the bytes and return, and each piece goes out
// on its own goroutine (a bounded number at a time), because one go-smb2 write waits for its
// answer before the next is sent and leaves the link idle between writes (the raw and E01
// writers write 1 MiB at a time through WriteAt). A failed write is reported by the next Write,
// WriteAt, Sync or Close, as with any buffered writer.
type smbFile struct {
	s    *SMB
	name string
	p    string

	mu       sync.Mutex
	f        *smb2.File
	gen      int       // session generation f was opened on
	tried    time.Time // last reopen attempt, and its outcome
	triedErr error

	off  int64       // next Write offset; Write is not called concurrently
	bufs chan []byte // free chunk buffers; taking one bounds the writes in flight

	qmu    sync.Mutex
	qdone  *sync.Cond
	flight map[*[2]int64]bool // byte ranges being written

	wg   sync.WaitGroup
	emu  sync.Mutex
	werr error
	hole int64 // offset of the lowest failed write; -1: none
}

const (
	// smbChunk is go-smb2's largest single WRITE (it caps MaxWriteSize at 1 MiB for Windows).
	smbChunk = 1 << 20
	// smbInFlight * smbChunk is go-smb2's default credit balance (128 credits of 64 KiB); more
	// would only queue inside the client.
	smbInFlight = 8
)

func newSMBFile(s *SMB, name, p string, f *smb2.File, gen int) *smbFile {
	bufs := make(chan []byte, smbInFlight)
	for range smbInFlight {
		bufs <- nil // allocated on first use: report files never need 8 MiB
	}
	sf := &smbFile{s: s, name: name, p: p, f: f, gen: gen, bufs: bufs, flight: map[*[2]int64]bool{}, hole: -1}
	sf.qdone = sync.NewCond(&sf.qmu)
	return sf
}

func (f *smbFile) firstErr() error {
	f.emu.Lock()
	defer f.emu.Unlock()
	return f.werr
}

func (f *smbFile) setErr(err error) {
	f.emu.Lock()
	if f.werr == nil {
		f.werr = err
	}
	f.emu.Unlock()
}

func (f *smbFile) Write(b []byte) (int, error) {
	n, err := f.WriteAt(b, f.off)
	f.off += int64(n)
	return n, err
}

// WriteAt queues a copy of b at off.
func (f *smbFile) WriteAt(b []byte, off int64) (int, error) {
	if err := f.firstErr(); err != nil {
		return 0, err
	}
	n := 0
	for n < len(b) {
		c := min(len(b)-n, smbChunk)
		f.queue(b[n:n+c], off+int64(n))
		n += c
		if err := f.firstErr(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// queue starts the write of a copy of b at off once no write in flight overlaps it: bytes written
// again (the E01 writer patches a section descriptor at the end of a group) must land last, even
// when the first write is being retried across a reconnect.
func (f *smbFile) queue(b []byte, off int64) {
	buf := <-f.bufs
	if buf == nil {
		buf = make([]byte, smbChunk)
	}
	buf = buf[:len(b)]
	copy(buf, b) // the caller may reuse b once WriteAt returns
	r := &[2]int64{off, off + int64(len(b))}
	f.qmu.Lock()
	for f.overlaps(r) {
		f.qdone.Wait()
	}
	f.flight[r] = true
	f.qmu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		if err := f.writeRetry(buf, off); err != nil {
			f.setErr(err)
			f.emu.Lock()
			if f.hole < 0 || off < f.hole {
				f.hole = off
			}
			f.emu.Unlock()
		}
		f.qmu.Lock()
		delete(f.flight, r)
		f.qdone.Broadcast()
		f.qmu.Unlock()
		f.bufs <- buf[:cap(buf)]
	}()
}

func (f *smbFile) overlaps(r *[2]int64) bool {
	for o := range f.flight {
		if r[0] < o[1] && o[0] < r[1] {
			return true
		}
	}
	return false
}

// writeRetry retries across a dropped connection: reconnect, reopen, write the same bytes at the
// same offset (idempotent, so a write that did land before the drop does no harm). A full share
// is reported at once: retrying cannot help.
func (f *smbFile) writeRetry(b []byte, off int64) error {
	var last, lastReopen error
	backoff := f.s.backoff
	for attempt := 1; ; attempt++ {
		// Another write of this file gave up: the share is gone, do not wait through it again.
		if err := f.firstErr(); err != nil {
			return err
		}
		if f.s.beforeWrite != nil {
			f.s.beforeWrite(off)
		}
		f.mu.Lock()
		h, gen := f.f, f.gen
		f.mu.Unlock()
		w := f.s.watch(gen)
		_, err := h.WriteAt(b, off)
		w.Stop()
		if err == nil {
			return nil
		}
		failed := time.Now()
		last = err
		if isNoSpace(err) {
			free, _ := f.s.FreeSpace()
			return fmt.Errorf("share %s is full (%d bytes free) writing %s", f.s.shareName(), free, f.s.Display(f.name))
		}
		if attempt >= f.s.attempts {
			break
		}
		time.Sleep(backoff)
		backoff *= 2
		if err := f.reopen(gen, failed); err != nil {
			lastReopen = err
		}
	}
	msg := scrub(last, f.s.spec.Password)
	if lastReopen != nil {
		msg += "; reconnecting: " + scrub(lastReopen, f.s.spec.Password)
	}
	return fmt.Errorf("share %s: writing %s at offset %d failed after %d attempts: %s",
		f.s.shareName(), f.s.Display(f.name), off, f.s.attempts, msg)
}

// reopen gets a working handle after a failed write on the handle of session generation gen:
// a new session if the old one is broken, then the file opened again. The writes in flight fail
// together; the first one here does the work, the others use its result.
func (f *smbFile) reopen(gen int, failed time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gen != gen {
		return nil // already reopened since this write failed
	}
	if f.tried.After(failed) {
		return f.triedErr // tried after this write failed, and it did not help
	}
	f.tried, f.triedErr = time.Now(), f.reopenLocked(gen)
	return f.triedErr
}

func (f *smbFile) reopenLocked(gen int) error {
	if !f.s.healthy(gen) {
		if err := f.s.reconnect(gen); err != nil {
			return err
		}
	}
	nf, sgen, err := f.s.reopenCurrent(f.p, os.O_RDWR)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", f.s.Display(f.name), err)
	}
	old := f.f
	f.f, f.gen = nf, sgen
	if sgen == gen {
		old.Close() // same session: release the server's handle
	}
	return nil
}

func isNoSpace(err error) bool {
	m := strings.ToUpper(err.Error())
	return strings.Contains(m, "DISK_FULL") || strings.Contains(m, "DISK WAS FULL") || strings.Contains(m, "DISK FULL") || strings.Contains(m, "NO SPACE") || strings.Contains(m, "QUOTA")
}

// Sync waits for the writes in flight and asks the server to flush. The flush is not watched for
// stalls: a server may take minutes to write back gigabytes of cache, and it answers in the end.
func (f *smbFile) Sync() error {
	f.wg.Wait()
	if err := f.firstErr(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.f.Sync(); err != nil {
		return fmt.Errorf("flush %s: %w", f.s.Display(f.name), err)
	}
	return nil
}

// Close waits for the writes in flight and closes the file. After a failed write the file is cut
// back to where that write began: writes behind it may have landed (several are in flight), and
// left alone they would make the file look longer than the bytes it really holds, with a hole of
// zeros inside. What stays on the share is then exactly the prefix that was written.
func (f *smbFile) Close() error {
	f.wg.Wait()
	f.mu.Lock()
	w := f.s.watch(f.gen)
	f.emu.Lock()
	hole := f.hole
	f.emu.Unlock()
	if hole >= 0 {
		if terr := f.f.Truncate(hole); terr != nil {
			f.setErr(fmt.Errorf("cut %s back to its last whole write at byte %d: %w", f.s.Display(f.name), hole, terr))
		}
	}
	cerr := f.f.Close()
	w.Stop()
	f.mu.Unlock()
	if err := f.firstErr(); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("close %s: %w", f.s.Display(f.name), cerr)
	}
	return nil
}

var _ io.WriterAt = (*smbFile)(nil)
