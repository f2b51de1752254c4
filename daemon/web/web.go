// Package web is the appliance's dashboard: a single page (plain HTML, CSS and JavaScript, embedded
// in the binary, nothing fetched from elsewhere) served at `/`, which drives the HTTP API of
// daemon/api like any other client and follows /api/events for live updates.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var static embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body, gz []byte // gz is nil when compression does not pay
	ctype    string
	etag     string
}

// UI serves the dashboard's files.
type UI struct {
	assets map[string]*asset // by URL path: "/" and "/ui/<file>"
}

// New loads the embedded files, with their ETags and gzip forms.
func New() (*UI, error) {
	u := &UI{assets: map[string]*asset{}}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return fmt.Errorf("dashboard asset %s: %w", p, err)
		}
		a, err := newAsset(path.Base(p), body)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "static/")
		u.assets["/ui/"+name] = a
		if name == "index.html" {
			u.assets["/"] = a
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if u.assets["/"] == nil {
		return nil, fmt.Errorf("dashboard: index.html is not embedded")
	}
	return u, nil
}

func newAsset(name string, body []byte) (*asset, error) {
	sum := sha256.Sum256(body)
	a := &asset{body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	a.ctype = mime.TypeByExtension(path.Ext(name))
	if a.ctype == "" {
		a.ctype = "application/octet-stream"
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(body); err != nil {
		return nil, fmt.Errorf("gzip %s: %w", name, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip %s: %w", name, err)
	}
	if buf.Len() < len(body)*9/10 {
		a.gz = buf.Bytes()
	}
	return a, nil
}

// ServeHTTP answers GET and HEAD for the dashboard's files. They are revalidated on every load
// (ETag), so a firmware update never leaves a browser with a stale page.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := u.assets[r.URL.Path]
	if a == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Encoding")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if a.gz != nil && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// Wrap puts the dashboard in front of the API handler: `/` and `/ui/…` are the dashboard's,
// everything else goes to api.
func (u *UI) Wrap(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.Handle("GET /{$}", u)
	mux.Handle("GET /ui/", u)
	return mux
}
