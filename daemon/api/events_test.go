package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

type sse struct {
	event, data string
}

// readEvents parses a server-sent event stream onto a channel until the body ends.
func readEvents(t *testing.T, e *env, ctx context.Context) <-chan sse {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ch := make(chan sse, 256)
	go func() {
		defer resp.Body.Close()
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var cur sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				cur.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				cur.data = strings.TrimPrefix(line, "data: ")
			case line == "" && cur.event != "":
				ch <- cur
				cur = sse{}
			}
		}
	}()
	return ch
}

// next waits for the first event of that kind whose data satisfies ok.
func next(t *testing.T, ch <-chan sse, event string, ok func(data string) bool) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev, open := <-ch:
			if !open {
				t.Fatalf("stream ended while waiting for %s", event)
			}
			if ev.event == event && ok(ev.data) {
				return ev.data
			}
		case <-deadline:
			t.Fatalf("no %s event in 20 s", event)
		}
	}
}

func portsEvent(t *testing.T, data string) map[string]PortInfo {
	t.Helper()
	var v struct{ Ports []PortInfo }
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatalf("ports event %q: %v", data, err)
	}
	out := map[string]PortInfo{}
	for _, p := range v.Ports {
		out[p.Name] = p
	}
	return out
}

// The event stream: the board on connect, a plugged drive once identified, a task's changes and
// its live progress, and the port's busy task coming and going.
func TestEvents(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := readEvents(t, e, ctx)

	first := portsEvent(t, next(t, ch, "ports", func(string) bool { return true }))
	if len(first) != 5 || first["USB1"].Mode != "target" || first["SATA2"].Drive != nil {
		t.Fatalf("first ports event: %+v", first)
	}

	if code, body := e.get("/api/sim/plug?port=SATA2&model=Plugged+Disk&serial=P1&path=" + url.QueryEscape(e.disks["USB1"]) + "&readMBps=x"); code != 400 || !strings.Contains(body, "readMBps") {
		t.Fatalf("bad readMBps: %d %s", code, body)
	}
	if code, body := e.get("/api/scan-port?port=SATA2"); code != 200 {
		t.Fatalf("scan-port: %d %s", code, body)
	}
	if code, body := e.get("/api/sim/plug?port=SATA2&model=Plugged+Disk&serial=P1&readMBps=2&path=" + url.QueryEscape(e.disks["USB1"])); code != 200 {
		t.Fatalf("plug: %d %s", code, body)
	}
	next(t, ch, "ports", func(d string) bool {
		p := portsEvent(t, d)["SATA2"]
		return p.Drive != nil && p.Drive.Model == "Plugged Disk" && p.Drive.Serial == "P1"
	})

	// 1 MiB at 2 MB/s: half a second of imaging to see live progress.
	code, key := e.get("/api/start-image?source=SATA2&targetType=raw&targetFolder=" + url.QueryEscape(e.targets))
	if code != 200 {
		t.Fatalf("start-image: %d %s", code, key)
	}
	next(t, ch, "task", func(d string) bool { return strings.Contains(d, `"taskKey":"`+key+`"`) })
	next(t, ch, "ports", func(d string) bool { return portsEvent(t, d)["SATA2"].Task == key })
	prog := next(t, ch, "progress", func(d string) bool { return strings.Contains(d, key) })
	var live []liveProgress
	if err := json.Unmarshal([]byte(prog), &live); err != nil || len(live) != 1 || live[0].BytesTotal != 1<<20 || live[0].TaskKey != key {
		t.Fatalf("progress event %s: %v", prog, err)
	}
	// The end: the port is free again, and check-task says completed.
	next(t, ch, "ports", func(d string) bool { return portsEvent(t, d)["SATA2"].Task == "" })
	if m := e.wait(key); m["state"] != "completed" {
		t.Fatalf("task: %v", m)
	}
}

// Cases are listed, and the task list filters by case.
func TestCasesAndTaskFilter(t *testing.T) {
	e := newEnv(t)
	if m := e.json("/api/cases"); len(m["cases"].([]any)) != 0 {
		t.Fatalf("cases before any: %v", m)
	}
	if code, body := e.get("/api/create-case?source=SATA1&caseId=C-1&caseExaminer=Ann"); code != 200 {
		t.Fatalf("create-case: %d %s", code, body)
	}
	cases := e.json("/api/cases")["cases"].([]any)
	if len(cases) != 1 || cases[0].(map[string]any)["caseId"] != "C-1" || cases[0].(map[string]any)["caseExaminer"] != "Ann" {
		t.Fatalf("cases: %v", cases)
	}
	tf := url.QueryEscape(e.targets)
	_, k1 := e.get("/api/start-image?source=SATA1&targetType=raw&targetFolder=" + tf)
	_, k2 := e.get("/api/start-image?source=SATA3&targetType=raw&targetFolder=" + tf)
	e.wait(k1)
	e.wait(k2)
	rows := e.json("/api/tasks?caseId=C-1")["tasks"].([]any)
	if len(rows) != 1 || rows[0].(map[string]any)["taskKey"] != k1 || rows[0].(map[string]any)["caseId"] != "C-1" {
		t.Fatalf("tasks of case C-1: %v", rows)
	}
	if rows := e.json("/api/tasks")["tasks"].([]any); len(rows) != 2 {
		t.Fatalf("all tasks: %v", rows)
	}
}

// An open event stream ends, with a closed event naming why, within a poll period of its token
// being revoked (logout) or its account's role changing.
func TestEventsEndWithTheSession(t *testing.T) {
	e := newSecureEnv(t, Config{})
	for _, c := range []struct {
		name, user string
		revoke     func(tok string)
		reason     string
	}{
		{"logout", "ex1", func(tok string) {
			if a := e.do("POST", "/logout", tok, ""); a.code != 200 {
				t.Fatalf("logout: %d %s", a.code, a.body)
			}
		}, "session ended"},
		{"role change", "ex2", func(string) {
			boss := e.token("boss", adminPass)
			if a := e.do("PATCH", "/api/users?name=ex2", boss, `{"role": "admin"}`); a.code != 200 {
				t.Fatalf("role change: %d %s", a.code, a.body)
			}
		}, "role changed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok := e.token(c.user, exPass)
			other := e.token("ex1", exPass) // a second session of ex1 that nobody touches
			ended := make(chan answer, 1)
			go func() {
				ended <- e.stream("/api/events", tok, func(body string) bool { return strings.Contains(body, "event: closed") })
			}()
			time.Sleep(700 * time.Millisecond) // the stream is open
			revoked := time.Now()
			c.revoke(tok)
			a := <-ended
			took := time.Since(revoked)
			if !strings.Contains(a.body, "event: closed") || !strings.Contains(a.body, c.reason) {
				t.Fatalf("stream after %s: no closed event with %q in %q", c.name, c.reason, a.body)
			}
			if took > 2*time.Second {
				t.Errorf("stream ended %v after %s, want within 2 s", took, c.name)
			}
			// Only the revoked session ends: another session of ex1 still answers.
			if a := e.do("GET", "/api/whoami", other, ""); a.code != 200 {
				t.Errorf("ex1's other session after %s: %d %s", c.name, a.code, a.body)
			}
		})
	}
}
