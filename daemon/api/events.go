package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Pacing of the event stream.
const (
	// portsPoll is how often the board is looked at for changes no hot-plug event announces
	// (identification finished, power, mode).
	portsPoll = 500 * time.Millisecond
	// progressEvery is the rate of live progress events while tasks run.
	progressEvery = time.Second
	// keepAlive is sent on a quiet stream so proxies and browsers keep it open.
	keepAlive = 15 * time.Second
)

// liveProgress is one running task's live figures in a progress event, as check-task computes them.
type liveProgress struct {
	TaskKey    string  `json:"taskKey"`
	BytesDone  int64   `json:"bytesDone"`
	BytesTotal int64   `json:"bytesTotal"`
	Progress   string  `json:"progress"`
	MBps       float64 `json:"mbps"`
	ETA        int     `json:"eta"` // seconds; -1 while unknown
}

// events streams server-sent events for the dashboard (GET /api/events, same auth as /api):
//
//	event: ports     data: the /api/ports answer; on connect and whenever a port changes
//	event: task      data: {"taskKey": ...}; a task's record changed (started, step, checkpoint, end)
//	event: progress  data: [liveProgress ...]; every second while tasks run
//
// The stream ends when the client goes away, StopEvents is called (server shutdown), or the
// token it was opened with stops being valid or changes role (logout, revocation, expiry, a role
// change): a stream must not outlive the right to read it. The last event then says why:
//
//	event: closed    data: {"reason": ...}
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	if err := noParams(r); err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.streams, cancel)
	defer stop()

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	send := func(event string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("event %s: %w", event, err)
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	visible := s.visibleKeys(who(r))
	hal := s.board.Subscribe(ctx)
	changes := s.tasks.Subscribe(ctx)
	var lastPorts []byte
	sendPorts := func() error {
		b, err := json.Marshal(PortsResponse{Ports: s.portList()})
		if err != nil {
			return err
		}
		if slices.Equal(b, lastPorts) {
			return nil
		}
		lastPorts = b
		if _, err := fmt.Fprintf(w, "event: ports\ndata: %s\n\n", b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := sendPorts(); err != nil {
		return nil // the client is gone
	}
	poll := time.NewTicker(portsPoll)
	defer poll.Stop()
	prog := time.NewTicker(progressEvery)
	defer prog.Stop()
	quiet := time.NewTicker(keepAlive)
	defer quiet.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-hal:
			if !ok {
				return nil
			}
			err = sendPorts()
		case key, ok := <-changes:
			if !ok {
				return nil
			}
			if !visible(key) {
				continue
			}
			if err = send("task", map[string]string{"taskKey": key}); err == nil {
				err = sendPorts() // a task start or end changes its port's busy task
			}
		case <-poll.C:
			if reason := s.streamRevoked(r); reason != "" {
				_ = send("closed", map[string]string{"reason": reason})
				return nil
			}
			err = sendPorts()
		case <-prog.C:
			if live := slices.DeleteFunc(s.liveProgress(), func(p liveProgress) bool { return !visible(p.TaskKey) }); len(live) > 0 {
				err = send("progress", live)
			}
		case <-quiet.C:
			if _, err = fmt.Fprint(w, ": keep-alive\n\n"); err == nil {
				err = rc.Flush()
			}
		}
		if err != nil {
			return nil // the client is gone; nothing to answer
		}
	}
}

// streamRevoked says why an open stream's credentials no longer hold ("" while they do): the
// token is checked again as a new request's would be, and a changed role ends the stream because
// what it may see was decided when it opened.
func (s *Server) streamRevoked(r *http.Request) string {
	id, err := s.authorize(r)
	if err != nil {
		return "the session ended: log in again"
	}
	if id.Role != who(r).Role {
		return "the account's role changed: open the stream again"
	}
	return ""
}

// liveProgress reads the live figures of every running task.
func (s *Server) liveProgress() []liveProgress {
	var out []liveProgress
	for _, k := range s.tasks.Running() {
		t, err := s.tasks.TaskRecord(k)
		if err != nil {
			continue // ended and gone meanwhile
		}
		st := s.tasks.Status(t)
		lp := liveProgress{TaskKey: k, BytesDone: st.BytesDone, BytesTotal: st.BytesTotal, Progress: st.Progress}
		lp.MBps, lp.ETA = speed(st.BytesDone, st.BytesTotal, st.Rate)
		out = append(out, lp)
	}
	slices.SortFunc(out, func(a, b liveProgress) int { return strings.Compare(a.TaskKey, b.TaskKey) })
	return out
}

// speed turns a live rate (bytes/s) into MB/s with two decimals and the seconds left (-1 while
// the rate is unknown).
func speed(done, total int64, rate float64) (mbps float64, eta int) {
	if rate <= 0 {
		return 0, -1
	}
	if total > done {
		eta = int(float64(total-done) / rate)
	}
	return math.Round(rate/1e4) / 100, eta
}

// StopEvents ends every open event stream (for http.Server.RegisterOnShutdown: Shutdown waits for
// active requests, and a stream never ends by itself).
func (s *Server) StopEvents() { s.stopStreams() }
