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
	"time"

	smb2 "github.com/cloudsoda/go-smb2"
)

// DialTimeout bounds connect+negotiate+login so an unknown host or a dead server fails promptly.
var DialTimeout = 5 * time.Second

// SMB is a folder on a share reached through the user-space SMB2/3 client.
type SMB struct {
	unc  UNC
	addr string
	spec Spec

	mu    sync.Mutex
	sess  *smb2.Session
	share *smb2.Share
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
	s := &SMB{unc: u, addr: net.JoinHostPort(ip, strconv.Itoa(u.Port)), spec: spec}
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

func (s *SMB) connect(ctx context.Context) error {
	c, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(c, "tcp", s.addr)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && strings.Contains(err.Error(), "refused") {
			return fmt.Errorf("server %s: connection refused on port %d", s.unc.Server, s.unc.Port)
		}
		return fmt.Errorf("server %s (%s): cannot connect: %v", s.unc.Server, s.addr, scrub(err, s.spec.Password))
	}
	conn.SetDeadline(time.Now().Add(DialTimeout))
	d := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: s.spec.Login, Password: s.spec.Password, Domain: s.spec.Domain}}
	sess, err := d.DialConn(c, conn, s.addr)
	if err != nil {
		conn.Close()
		msg := scrub(err, s.spec.Password)
		if strings.Contains(strings.ToLower(msg), "logon") || strings.Contains(strings.ToLower(msg), "access") || strings.Contains(strings.ToLower(msg), "password") {
			return fmt.Errorf("server %s: access denied for user %q (wrong login, password or domain)", s.unc.Server, s.spec.Login)
		}
		return fmt.Errorf("server %s: SMB session failed: %s", s.unc.Server, msg)
	}
	conn.SetDeadline(time.Time{})
	sh, err := sess.Mount(s.unc.Share)
	if err != nil {
		sess.Logoff()
		msg := scrub(err, s.spec.Password)
		if strings.Contains(strings.ToLower(msg), "access") {
			return fmt.Errorf("share //%s/%s: access denied for user %q", s.unc.Server, s.unc.Share, s.spec.Login)
		}
		return fmt.Errorf("share //%s/%s does not exist or cannot be opened: %s", s.unc.Server, s.unc.Share, msg)
	}
	s.mu.Lock()
	s.sess, s.share = sess, sh
	s.mu.Unlock()
	return nil
}

func scrub(err error, pw string) string {
	m := err.Error()
	if pw != "" {
		m = strings.ReplaceAll(m, pw, "***")
	}
	return m
}

func (s *SMB) cur() *smb2.Share {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.share
}

// p is the share-relative path with backslashes, as SMB wants it.
func (s *SMB) p(name string) (string, error) {
	rel := path.Clean("/" + s.unc.Dir + "/" + name)
	if strings.Contains(name, "..") && !strings.HasPrefix(rel, "/"+s.unc.Dir) {
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
	f, err := s.cur().OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) || (err != nil && strings.Contains(err.Error(), "COLLISION")) {
		return nil, fmt.Errorf("%s: %w", s.Display(name), ErrExist)
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %v", s.Display(name), err)
	}
	return newSMBFile(s, name, p, f), nil
}

func (s *SMB) OpenFile(name string) (File, error) {
	p, err := s.p(name)
	if err != nil {
		return nil, err
	}
	f, err := s.cur().OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s.Display(name), err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", s.Display(name), err)
	}
	sf := newSMBFile(s, name, p, f)
	sf.off = st.Size()
	return sf, nil
}

type smbReadFile struct {
	*smb2.File
	size int64
}

func (f smbReadFile) Size() int64 { return f.size }

func (s *SMB) Open(name string) (ReadFile, error) {
	p, err := s.p(name)
	if err != nil {
		return nil, err
	}
	f, err := s.cur().Open(p)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s.Display(name), err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return smbReadFile{f, st.Size()}, nil
}

func (s *SMB) Truncate(name string, size int64) error {
	p, err := s.p(name)
	if err != nil {
		return err
	}
	return s.cur().Truncate(p, size)
}

func (s *SMB) Stat(name string) (int64, error) {
	p, err := s.p(name)
	if err != nil {
		return 0, err
	}
	st, err := s.cur().Stat(p)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
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
	return s.cur().Rename(op, np)
}

func (s *SMB) Remove(name string) error {
	p, err := s.p(name)
	if err != nil {
		return err
	}
	return s.cur().Remove(p)
}

// MkdirAll creates each missing level; SMB has no recursive mkdir.
func (s *SMB) MkdirAll(dir string) error {
	p, err := s.p(dir)
	if err != nil {
		return err
	}
	sh := s.cur()
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
}

func (s *SMB) FreeSpace() (int64, error) {
	p, _ := s.p("")
	if p == "" {
		p = "."
	}
	fi, err := s.cur().Statfs(p)
	if err != nil {
		return 0, fmt.Errorf("free space of //%s/%s: %w", s.unc.Server, s.unc.Share, err)
	}
	return int64(fi.FreeBlockCount() * fi.BlockSize() * fi.FragmentSize()), nil
}

func (s *SMB) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.share != nil {
		s.share.Umount()
		s.share = nil
	}
	if s.sess != nil {
		err := s.sess.Logoff()
		s.sess = nil
		return err
	}
	return nil
}

// reconnect replaces a broken session (after a dropped connection).
func (s *SMB) reconnect() error {
	s.mu.Lock()
	if s.sess != nil {
		s.sess.Logoff()
	}
	s.mu.Unlock()
	return s.connect(context.Background())
}

// smbFile pipelines Write: each chunk goes out as WriteAt on its own goroutine (bounded), because
// one go-smb2 Write sends its 1 MiB pieces strictly in sequence and leaves the link idle.
type smbFile struct {
	s    *SMB
	name string
	p    string

	mu  sync.Mutex
	f   *smb2.File
	off int64

	sem  chan struct{}
	wg   sync.WaitGroup
	emu  sync.Mutex
	werr error
}

const (
	smbChunk    = 1 << 20
	smbInFlight = 8
)

func newSMBFile(s *SMB, name, p string, f *smb2.File) *smbFile {
	return &smbFile{s: s, name: name, p: p, f: f, sem: make(chan struct{}, smbInFlight)}
}

func (f *smbFile) firstErr() error {
	f.emu.Lock()
	defer f.emu.Unlock()
	return f.werr
}

func (f *smbFile) Write(b []byte) (int, error) {
	if err := f.firstErr(); err != nil {
		return 0, err
	}
	n := 0
	for len(b) > 0 {
		c := min(len(b), smbChunk)
		buf := make([]byte, c) // the caller may reuse b once Write returns
		copy(buf, b[:c])
		off := f.off
		f.off += int64(c)
		f.sem <- struct{}{}
		f.wg.Add(1)
		go func() {
			defer func() { <-f.sem; f.wg.Done() }()
			if _, err := f.WriteAt(buf, off); err != nil {
				f.emu.Lock()
				if f.werr == nil {
					f.werr = err
				}
				f.emu.Unlock()
			}
		}()
		n += c
		b = b[c:]
	}
	return n, f.firstErr()
}

// WriteAt retries across a dropped connection: reconnect, reopen, write the same bytes at the same
// offset. A full share is reported at once (retrying cannot help).
func (f *smbFile) WriteAt(b []byte, off int64) (int, error) {
	var last error
	for attempt, backoff := 0, 200*time.Millisecond; attempt < 4; attempt, backoff = attempt+1, backoff*2 {
		f.mu.Lock()
		h := f.f
		f.mu.Unlock()
		n, err := h.WriteAt(b, off)
		if err == nil {
			return n, nil
		}
		last = err
		if isNoSpace(err) {
			free, _ := f.s.FreeSpace()
			return n, fmt.Errorf("share //%s/%s is full (%d bytes free) writing %s", f.s.unc.Server, f.s.unc.Share, free, f.s.Display(f.name))
		}
		time.Sleep(backoff)
		f.mu.Lock()
		if f.f == h { // first goroutine to notice reconnects; others reuse the new handle
			if rerr := f.s.reconnect(); rerr == nil {
				if nf, oerr := f.s.cur().OpenFile(f.p, os.O_RDWR, 0); oerr == nil {
					f.f = nf
				}
			}
		}
		f.mu.Unlock()
	}
	return 0, fmt.Errorf("write %s at offset %d failed after retries: %v", f.s.Display(f.name), off, last)
}

func isNoSpace(err error) bool {
	m := strings.ToUpper(err.Error())
	return strings.Contains(m, "DISK_FULL") || strings.Contains(m, "DISK WAS FULL") || strings.Contains(m, "DISK FULL") || strings.Contains(m, "NO SPACE") || strings.Contains(m, "QUOTA")
}

func (f *smbFile) Sync() error {
	f.wg.Wait()
	if err := f.firstErr(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.f.Sync()
}

func (f *smbFile) Close() error {
	f.wg.Wait()
	f.mu.Lock()
	cerr := f.f.Close()
	f.mu.Unlock()
	if err := f.firstErr(); err != nil {
		return err
	}
	return cerr
}

var _ io.WriterAt = (*smbFile)(nil)
