package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The dashboard's files: index at /, assets under /ui/, gzip when asked, 304 on a matching ETag,
// and everything else left to the API handler.
func TestServe(t *testing.T) {
	u, err := New()
	if err != nil {
		t.Fatal(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "api "+r.Method+" "+r.URL.Path)
	})
	h := u.Wrap(api)
	do := func(method, path string, hdr map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	idx := do("GET", "/", nil)
	if idx.Code != 200 || !strings.HasPrefix(idx.Header().Get("Content-Type"), "text/html") || !strings.Contains(idx.Body.String(), `<script src="/ui/app.js"`) {
		t.Fatalf("GET /: %d %s", idx.Code, idx.Header())
	}
	if !strings.Contains(idx.Body.String(), "<title>evidenced</title>") || strings.Contains(idx.Body.String(), "http://") || strings.Contains(idx.Body.String(), "https://") {
		t.Error("the index names an outside address (everything must be embedded)")
	}
	etag := idx.Header().Get("ETag")
	if r := do("GET", "/", map[string]string{"If-None-Match": etag}); r.Code != http.StatusNotModified || r.Body.Len() != 0 {
		t.Errorf("revalidation: %d, %d bytes", r.Code, r.Body.Len())
	}
	js := do("GET", "/ui/app.js", map[string]string{"Accept-Encoding": "gzip, deflate"})
	if js.Code != 200 || js.Header().Get("Content-Encoding") != "gzip" || !strings.Contains(js.Header().Get("Content-Type"), "javascript") {
		t.Fatalf("GET /ui/app.js with gzip: %d %s", js.Code, js.Header())
	}
	zr, err := gzip.NewReader(js.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if raw := do("GET", "/ui/app.js", nil); !bytes.Equal(raw.Body.Bytes(), plain) || raw.Header().Get("Content-Encoding") != "" {
		t.Error("the gzip form does not decode to the plain file")
	}
	if r := do("HEAD", "/ui/app.css", nil); r.Code != 200 || r.Body.Len() != 0 || r.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD: %d, %d bytes, length %q", r.Code, r.Body.Len(), r.Header().Get("Content-Length"))
	}
	if r := do("GET", "/ui/nothing.js", nil); r.Code != 404 {
		t.Errorf("missing asset: %d", r.Code)
	}
	for _, c := range []struct{ method, path string }{{"GET", "/api/ports"}, {"POST", "/login"}, {"POST", "/"}, {"GET", "/healthz"}, {"GET", "/other"}} {
		if r := do(c.method, c.path, nil); r.Code != http.StatusTeapot || r.Body.String() != "api "+c.method+" "+c.path {
			t.Errorf("%s %s did not reach the API: %d %q", c.method, c.path, r.Code, r.Body.String())
		}
	}
	for enc, want := range map[string]bool{"": false, "gzip": true, "br, GZIP ;q=0.5": true, "gzip;q=0": false, "deflate": false} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", enc)
		if got := acceptsGzip(r); got != want {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", enc, got, want)
		}
	}
}
