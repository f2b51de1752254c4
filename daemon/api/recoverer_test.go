package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRecoverer: a handler's panic becomes a 500 with a JSON error, but a handler that aborts a
// response it has begun (http.ErrAbortHandler: the report archive when the client is gone or a
// write fails) has its connection cut, so the client sees a broken transfer, never the start of
// an archive with an error message after it that could be read as an answer.
func TestRecoverer(t *testing.T) {
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	srv := httptest.NewServer(s.recoverer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/abort" {
			w.Write([]byte("PK\x03\x04 the start of an archive"))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		panic("a bug")
	})))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/bug")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(string(b), "internal error") || strings.Contains(string(b), "a bug") {
		t.Fatalf("panic: %d %s", resp.StatusCode, b)
	}
	resp, err = http.Get(srv.URL + "/abort")
	if err != nil {
		t.Fatal(err)
	}
	b, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("an aborted response read as whole: %q", b)
	}
}
