package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// vm is the appliance image running in QEMU through scripts/qemu-run.sh.
type vm struct {
	t       *testing.T
	repo    string
	state   string // qemu-run.sh's STATE directory
	apiPort int
	smbPort int
	cmd     *exec.Cmd
	exited  chan struct{}
	serial  string
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// boot starts QEMU (fresh: a new overlay over the image; else the disk of the last run) and waits
// for /healthz; it returns the time from QEMU's start to API-ready.
func (v *vm) boot(fresh bool, timeout time.Duration) time.Duration {
	v.t.Helper()
	f := "0"
	if fresh {
		f = "1"
	}
	cmd := exec.Command(filepath.Join(v.repo, "scripts/qemu-run.sh"))
	cmd.Dir = v.repo
	cmd.Env = append(os.Environ(), "STATE="+v.state, "SMBD=0", "FRESH="+f, "SERIAL="+v.serial,
		fmt.Sprintf("API_PORT=%d", v.apiPort), fmt.Sprintf("SMB_PORT=%d", v.smbPort))
	out, err := os.Create(filepath.Join(v.state, "qemu-run.out"))
	if err != nil {
		v.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		v.t.Fatal(err)
	}
	v.cmd, v.exited = cmd, make(chan struct{})
	go func() { cmd.Wait(); out.Close(); close(v.exited) }()
	v.t.Cleanup(v.kill)
	v.waitAPI(timeout)
	return time.Since(start)
}

// kill ends QEMU at once: a power loss for the guest.
func (v *vm) kill() {
	if v.cmd == nil {
		return
	}
	_ = v.cmd.Process.Signal(syscall.SIGKILL)
	<-v.exited
	v.cmd = nil
}

func (v *vm) url(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", v.apiPort, path) }

// get calls the API and returns status and body.
func (v *vm) get(path string) (int, string, error) {
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(v.url(path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (v *vm) mustGet(path string) string {
	v.t.Helper()
	code, body, err := v.get(path)
	if err != nil || code != http.StatusOK {
		v.t.Fatalf("GET %s: %d %v: %s", path, code, err, body)
	}
	return body
}

// health returns /healthz's version, or an error while the API does not answer.
func (v *vm) health() (string, error) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(v.url("/healthz"))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var h struct{ Status, Version string }
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || h.Status != "ok" {
		return "", fmt.Errorf("healthz: %d %q", resp.StatusCode, h.Status)
	}
	return h.Version, nil
}

func (v *vm) waitAPI(timeout time.Duration) string {
	v.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ver, err := v.health()
		if err == nil {
			return ver
		}
		select {
		case <-v.exited:
			v.t.Fatalf("QEMU exited before the API answered; serial console:\n%s", v.serialTail())
		default:
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("API not ready after %s (%v); serial console:\n%s", timeout, err, v.serialTail())
		}
		time.Sleep(time.Second)
	}
}

func (v *vm) serialTail() string {
	b, _ := os.ReadFile(v.serial)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// exec runs a shell command in the guest through the QEMU guest agent and returns its output. A
// guest agent that stops answering (seen under heavy host load) is reconnected and the command
// retried.
func (v *vm) exec(script string, timeout time.Duration) (string, int) {
	v.t.Helper()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var out string
		var code int
		if out, code, err = v.execOnce(script, timeout); err == nil {
			return out, code
		}
		v.t.Logf("guest agent: %v (attempt %d)", err, attempt+1)
	}
	v.t.Fatalf("guest agent: %s: %v", script, err)
	return "", -1
}

func (v *vm) execOnce(script string, timeout time.Duration) (string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", filepath.Join(v.state, "qga.sock"))
	if err != nil {
		return "", 0, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	r := bufio.NewReader(conn)
	call := func(cmd string, args any) (json.RawMessage, error) {
		req := map[string]any{"execute": cmd}
		if args != nil {
			req["arguments"] = args
		}
		b, _ := json.Marshal(req)
		if _, err := conn.Write(append(b, '\n')); err != nil {
			return nil, fmt.Errorf("%s: %w", cmd, err)
		}
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return nil, fmt.Errorf("%s: %w", cmd, err)
			}
			var resp struct {
				Return json.RawMessage
				Error  *struct{ Desc string }
			}
			if json.Unmarshal(line, &resp) != nil {
				continue
			}
			if resp.Error != nil {
				return nil, fmt.Errorf("%s: %s", cmd, resp.Error.Desc)
			}
			if resp.Return != nil {
				return resp.Return, nil
			}
		}
	}
	id := time.Now().UnixNano() & 0x7fffffff
	for {
		ret, err := call("guest-sync", map[string]any{"id": id})
		if err != nil {
			return "", 0, err
		}
		var got int64
		if json.Unmarshal(ret, &got) == nil && got == id {
			break
		}
	}
	ret, err := call("guest-exec", map[string]any{"path": "/bin/sh", "arg": []string{"-c", script}, "capture-output": true})
	if err != nil {
		return "", 0, err
	}
	var started struct{ PID int }
	if err := json.Unmarshal(ret, &started); err != nil {
		return "", 0, err
	}
	for {
		ret, err := call("guest-exec-status", map[string]any{"pid": started.PID})
		if err != nil {
			return "", 0, err
		}
		var st struct {
			Exited   bool
			ExitCode int    `json:"exitcode"`
			Out      string `json:"out-data"`
			Err      string `json:"err-data"`
		}
		if err := json.Unmarshal(ret, &st); err != nil {
			return "", 0, err
		}
		if st.Exited {
			o, _ := base64.StdEncoding.DecodeString(st.Out)
			e, _ := base64.StdEncoding.DecodeString(st.Err)
			return strings.TrimSpace(string(o) + string(e)), st.ExitCode, nil
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// mustExec runs script in the guest and fails the test unless it exits 0.
func (v *vm) mustExec(script string, timeout time.Duration) string {
	v.t.Helper()
	out, code := v.exec(script, timeout)
	if code != 0 {
		v.t.Fatalf("guest: %s: exit %d: %s", script, code, out)
	}
	return out
}

// drives makes the evidence drive images (qemu-run.sh DRIVES_ONLY=1) so that their hashes can be
// taken before QEMU first opens them; it returns the drives folder.
func (v *vm) drives() string {
	v.t.Helper()
	cmd := exec.Command(filepath.Join(v.repo, "scripts/qemu-run.sh"))
	cmd.Dir = v.repo
	cmd.Env = append(os.Environ(), "STATE="+v.state, "DRIVES_ONLY=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		v.t.Fatalf("qemu-run.sh DRIVES_ONLY=1: %v\n%s", err, out)
	}
	return filepath.Join(v.state, "drives")
}

// qmp sends one command to QEMU's monitor (QMP) and waits for its answer; events are skipped.
func (v *vm) qmp(command string, args map[string]any) error {
	conn, err := net.DialTimeout("unix", filepath.Join(v.state, "qmp.sock"), 10*time.Second)
	if err != nil {
		return fmt.Errorf("QMP: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := r.ReadBytes('\n'); err != nil { // the greeting
		return fmt.Errorf("QMP greeting: %w", err)
	}
	for _, req := range []map[string]any{{"execute": "qmp_capabilities"}, {"execute": command, "arguments": args}} {
		b, _ := json.Marshal(req)
		if _, err := conn.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("QMP %s: %w", req["execute"], err)
		}
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return fmt.Errorf("QMP %s: %w", req["execute"], err)
			}
			var resp struct {
				Return json.RawMessage
				Error  *struct{ Class, Desc string }
			}
			if json.Unmarshal(line, &resp) != nil {
				continue
			}
			if resp.Error != nil {
				return fmt.Errorf("QMP %s: %s: %s", req["execute"], resp.Error.Class, resp.Error.Desc)
			}
			if resp.Return != nil {
				break
			}
		}
	}
	return nil
}
