// Package transport serves the API over HTTPS: the appliance's own certificate (made on first
// start, ECDSA P-256, self-signed, kept in the data folder) or one given by the operator, its
// fingerprint for examiners to check, and one port that answers TLS and plain HTTP apart (plain
// HTTP is redirected to HTTPS or refused).
package transport

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// File names of the generated certificate and key in the data folder.
const (
	CertFile = "tls-cert.pem"
	KeyFile  = "tls-key.pem"
)

// Fingerprint is the SHA-256 of a certificate's DER encoding, as browsers show it (AB:CD:...).
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// LoadPair reads a certificate and key in PEM files.
func LoadPair(certFile, keyFile string) (tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return c, nil
}

// LoadOrCreate returns the appliance's own certificate from dir, making it first when there is
// none; created says it was made now.
func LoadOrCreate(dir string, hosts []string) (cert tls.Certificate, created bool, err error) {
	cf, kf := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	if _, err := os.Stat(cf); err == nil {
		c, err := LoadPair(cf, kf)
		return c, false, err
	}
	certPEM, keyPEM, err := selfSigned(hosts, time.Now())
	if err != nil {
		return tls.Certificate{}, false, err
	}
	// Key first: a certificate on disk means its key is there too.
	if err := writeFile(kf, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, false, err
	}
	if err := writeFile(cf, certPEM, 0o644); err != nil {
		return tls.Certificate{}, false, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("new TLS certificate: %w", err)
	}
	return c, true, nil
}

// ReadFingerprint returns the fingerprint of the first certificate in a PEM file.
func ReadFingerprint(certFile string) (string, error) {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return "", fmt.Errorf("read certificate: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return "", fmt.Errorf("%s holds no PEM certificate", certFile)
	}
	return Fingerprint(b.Bytes), nil
}

func selfSigned(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "evidenced appliance", Organization: []string{"evidenced"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range append([]string{"localhost", "127.0.0.1", "::1"}, hosts...) {
		if ip := net.ParseIP(h); ip != nil {
			if !ip.IsUnspecified() { // 0.0.0.0 from --listen names no host
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Split accepts on ln and tells TLS from plain connections by their first byte (a TLS handshake
// record starts with 22): TLS connections come out of the first listener already wrapped in
// tls.Server, plain ones out of the second. Closing either closes ln.
func Split(ln net.Listener, cfg *tls.Config) (tlsLn, plainLn net.Listener) {
	sp := &splitter{ln: ln, tlsC: make(chan net.Conn), plainC: make(chan net.Conn), done: make(chan struct{})}
	go sp.accept(cfg)
	return &side{sp, sp.tlsC}, &side{sp, sp.plainC}
}

type splitter struct {
	ln           net.Listener
	tlsC, plainC chan net.Conn
	done         chan struct{}
	once         sync.Once
	err          error
}

func (sp *splitter) accept(cfg *tls.Config) {
	for {
		c, err := sp.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			sp.close(err)
			return
		}
		go sp.sort(c, cfg)
	}
}

// sort reads the first byte (waiting at most 10 s for it) and hands the connection on.
func (sp *splitter) sort(c net.Conn, cfg *tls.Config) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	var out net.Conn = &peekedConn{Conn: c, r: br}
	ch := sp.plainC
	if first[0] == 22 {
		out, ch = tls.Server(out, cfg), sp.tlsC
	}
	select {
	case ch <- out:
	case <-sp.done:
		c.Close()
	}
}

func (sp *splitter) close(err error) {
	sp.once.Do(func() {
		sp.err = err
		close(sp.done)
		sp.ln.Close()
	})
}

type side struct {
	sp *splitter
	c  chan net.Conn
}

func (s *side) Accept() (net.Conn, error) {
	select {
	case c := <-s.c:
		return c, nil
	case <-s.sp.done:
		return nil, net.ErrClosed
	}
}

func (s *side) Close() error   { s.sp.close(net.ErrClosed); return nil }
func (s *side) Addr() net.Addr { return s.sp.ln.Addr() }

// peekedConn reads through the buffer that holds the peeked byte.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
