package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidenced/evidenced/daemon/auth"
	"github.com/evidenced/evidenced/internal/testenv"
	"github.com/evidenced/evidenced/store"
)

// The tests of this file hold the API to the TaskForce document (issue 14), one per point: a
// script written from the document runs unchanged.

// apiError is a request's status and its error sentence (decoded from {"error": ...}).
func (e *env) apiError(path string) (int, string) {
	e.t.Helper()
	code, body := e.get(path)
	var r ErrorResponse
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Error == "" {
		return code, body
	}
	return code, r.Error
}

// taskCount is how many tasks the appliance knows.
func (e *env) taskCount() int {
	e.t.Helper()
	var out TasksResponse
	if err := json.Unmarshal([]byte(mustBody(e, "/api/tasks")), &out); err != nil {
		e.t.Fatal(err)
	}
	return len(out.Tasks)
}

func mustBody(e *env, path string) string {
	e.t.Helper()
	code, body := e.get(path)
	if code != 200 {
		e.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	return body
}

// shape checks that a JSON object has every field named, with the JSON type given ("string",
// "bool", "object").
func shape(t *testing.T, what, body string, fields map[string]string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%s: %v: %s", what, err, body)
	}
	for name, typ := range fields {
		v, ok := m[name]
		if !ok {
			t.Errorf("%s: field %q missing: %s", what, name, body)
			continue
		}
		var got string
		switch v.(type) {
		case string:
			got = "string"
		case bool:
			got = "bool"
		case map[string]any:
			got = "object"
		case float64:
			got = "number"
		default:
			got = fmt.Sprintf("%T", v)
		}
		if got != typ {
			t.Errorf("%s: field %q is %s, want %s: %s", what, name, got, typ, body)
		}
	}
}

var checkTaskFields = map[string]string{"task": "string", "taskStep": "string", "source": "string", "port": "string",
	"state": "string", "message": "string", "progress": "string", "completionDate": "string", "target": "string",
	"report": "string", "hashes": "object"}

var scanPortFields = map[string]string{"state": "string", "isSource": "bool", "model": "string", "serial": "string",
	"caseId": "string", "evidenceId": "string"}

// Point 1: every documented field of scan-port and check-task is present with its type, in every
// state: an empty port, a drive without a case, a running image task, a diagnose task.
func TestFidelityFieldsAlwaysPresent(t *testing.T) {
	e := newEnv(t)
	for _, port := range []string{"SATA2", "SATA1", "USB1"} {
		var body string
		for {
			_, body = e.get("/api/scan-port?" + port)
			if !strings.Contains(body, `"identifying"`) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		shape(t, "scan-port "+port, body, scanPortFields)
	}
	// A slow drive: the task is seen running, before any hash exists.
	key := e.mustStart("/api/start-image?source=SATA4&targetType=raw&targetFolder=" + url.QueryEscape(e.targets))
	_, body := e.get("/api/check-task?taskKey=" + url.QueryEscape(key))
	shape(t, "check-task running", body, checkTaskFields)
	if m := e.json("/api/check-task?taskKey=" + url.QueryEscape(key)); m["state"] == "in-progress" && len(m["hashes"].(map[string]any)) != 0 {
		t.Errorf("hashes before the end: %v", m)
	}
	e.wait(key)
	_, body = e.get("/api/check-task?taskKey=" + url.QueryEscape(key))
	shape(t, "check-task completed", body, checkTaskFields)

	diag := e.mustStart("/api/diagnose?source=SATA1")
	_, body = e.get("/api/check-task?taskKey=" + url.QueryEscape(diag))
	shape(t, "check-task diagnose running", body, checkTaskFields)
	e.wait(diag)
	_, body = e.get("/api/check-task?taskKey=" + url.QueryEscape(diag))
	shape(t, "check-task diagnose completed", body, checkTaskFields)
	shape(t, "source-drives", mustBody(e, "/api/source-drives"), map[string]string{"scannedSourcePorts": "number", "totalSourcePorts": "number"})
}

// Point 2: a completed task's message is the document's word; the details have their own fields.
func TestFidelityMessageIsCompleted(t *testing.T) {
	e := newEnv(t)
	tf := url.QueryEscape(e.targets)
	for _, c := range []struct {
		name, path, details string
		unreadable          float64
		verified            bool
	}{
		{"clean drive", "/api/start-image?source=SATA1&targetType=raw&targetFolder=" + tf, "verified", 0, true},
		{"bad sectors", "/api/start-image?source=SATA3&targetType=raw&targetFolder=" + tf, "3 unreadable sectors zero-filled; verified", 3, true},
		{"not verified", "/api/start-image?source=SATA1&targetType=raw&verify=false&targetFile=nv&targetFolder=" + tf, "", 0, false},
		{"diagnose", "/api/diagnose?source=SATA3", "3 unreadable sectors", 3, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := e.wait(e.mustStart(c.path))
			if m["state"] != "completed" || m["message"] != "completed" || m["details"] != c.details ||
				m["unreadableSectors"] != c.unreadable || m["verified"] != c.verified {
				t.Fatalf("check-task: %v (want message completed, details %q, unreadableSectors %v, verified %v)", m, c.details, c.unreadable, c.verified)
			}
		})
	}
	// A record from before details had their own field answers the same way.
	old := &store.Task{Key: "image_9_Old_S1_EVD0001_x", Kind: "image", Port: "SATA2", Model: "Old", Serial: "S1", State: "completed",
		Message: "completed; 2 unreadable sectors zero-filled; verified", BadSectors: []store.SectorRange{{First: 5, Count: 2}}}
	if err := e.st.PutTask(old); err != nil {
		t.Fatal(err)
	}
	m := e.json("/api/check-task?taskKey=" + old.Key)
	if m["message"] != "completed" || m["details"] != "2 unreadable sectors zero-filled; verified" || m["verified"] != true || m["unreadableSectors"] != float64(2) {
		t.Fatalf("old record: %v", m)
	}
}

// Point 3: /login takes the document's request as curl -d and requests.post(data=...) send it.
func TestFidelityLogin(t *testing.T) {
	e := newEnvCfg(t, Config{UserManagement: true})
	if _, err := auth.AddUser(e.st, "admin", "12345678", auth.Admin); err != nil { // the document's 12345 is below the minimum length
		t.Fatal(err)
	}
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for _, c := range []struct {
		name, body, contentType string
		code                    int
	}{
		{"curl -d, document's JSON", `{"username":"admin","password":12345678}`, "application/x-www-form-urlencoded", 200},
		{"no content type", `{"username": "admin", "password": "12345678"}`, "", 200},
		{"JSON content type", `{"username":"admin","password":"12345678"}`, "application/json", 200},
		{"text/plain JSON", "\n {\"username\":\"admin\",\"password\":12345678}\n", "text/plain", 200},
		{"form fields", "username=admin&password=12345678", "application/x-www-form-urlencoded", 200},
		{"wrong password", `{"username":"admin","password":1234567}`, "application/x-www-form-urlencoded", 401},
		{"broken JSON", `{"username":"admin",`, "application/x-www-form-urlencoded", 400},
		{"JSON type, not JSON", `username=admin&password=12345`, "application/json", 400},
		{"nothing", ``, "", 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/login", strings.NewReader(c.body))
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.code, b)
			}
			if c.code == 200 {
				if !hex64.Match(b) {
					t.Fatalf("token %q is not 64 hex characters", b)
				}
				if code, body := e.get("/api/source-drives?token=" + string(b)); code != 200 {
					t.Fatalf("token refused: %d %s", code, body)
				}
			}
		})
	}
}

// Point 4: start-image's settings= names a saved imaging preset, applied under the request's own
// parameters; an unknown name is 400 listing the ones that exist.
func TestFidelityImagingPresets(t *testing.T) {
	e := newEnv(t)
	tf := url.QueryEscape(e.targets)
	if code, body := e.postJSON("/api/settings", `{"kind": "imaging", "name": "raw sha256", "params": {"TargetType": "raw", "hash": "sha256", "verify": "false"}}`); code != http.StatusCreated {
		t.Fatalf("POST imaging preset: %d %s", code, body)
	}
	if code, body := e.postJSON("/api/settings", `{"name": "docs", "extensions": ["doc"]}`); code != http.StatusCreated {
		t.Fatalf("POST logical preset: %d %s", code, body)
	}
	if body := mustBody(e, "/api/settings?kind=imaging"); !strings.Contains(body, `"raw sha256"`) || strings.Contains(body, `"docs"`) {
		t.Fatalf("imaging presets: %s", body)
	}
	for _, c := range []struct {
		name, query, target string
		hashes              []string
		verified            bool
	}{
		{"preset alone", "&settings=raw+sha256", ".raw", []string{"SHA256"}, false},
		{"request overrides", "&settings=RAW+SHA256&targetType=aff4&verify=true&targetFile=over", "over.aff4", []string{"SHA256"}, true},
		{"name matched as stored", "&SETTINGS=raw+sha256&hash=md5&targetFile=md5", "md5.raw", []string{"MD5"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := e.wait(e.mustStart("/api/start-image?source=SATA1&targetFolder=" + tf + c.query))
			h := m["hashes"].(map[string]any)
			if m["state"] != "completed" || !strings.HasSuffix(m["target"].(string), c.target) || len(h) != len(c.hashes) || m["verified"] != c.verified {
				t.Fatalf("check-task: %v (want %s, hashes %v, verified %v)", m, c.target, c.hashes, c.verified)
			}
			for _, n := range c.hashes {
				if h[n] == nil {
					t.Fatalf("hash %s missing: %v", n, h)
				}
			}
		})
	}
	for _, c := range []struct{ path, want string }{
		{"/api/start-image?source=SATA1&targetFolder=" + tf + "&settings=nope", `settings="nope": no such imaging preset; saved: raw sha256`},
		{"/api/start-image?source=SATA1&targetFolder=" + tf + "&settings=docs", "no such imaging preset"},
		{"/api/start-logical?source=SATA1&targetFolder=" + tf + "&settings=raw+sha256", "no such filter preset; saved: docs"},
	} {
		if code, msg := e.apiError(c.path); code != 400 || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %s (want 400 %q)", c.path, code, msg, c.want)
		}
	}
	for _, c := range []struct{ body, want string }{
		{`{"kind": "imaging", "name": "x", "params": {"source": "SATA1"}}`, `unknown parameter "source"`},
		{`{"kind": "imaging", "name": "x", "params": {"targetType": "vhd"}}`, "targetType"},
		{`{"kind": "imaging", "name": "x", "params": {"e01Compression": "ultra"}}`, "e01Compression"},
		{`{"kind": "imaging", "params": {"targetType": "raw"}}`, "name is required"},
		{`{"kind": "both", "name": "x"}`, "imaging, logical"},
	} {
		code, body := e.postJSON("/api/settings", c.body)
		var r ErrorResponse
		json.Unmarshal([]byte(body), &r)
		if code != 400 || !strings.Contains(r.Error, c.want) {
			t.Errorf("POST %s: %d %s (want 400 %q)", c.body, code, body, c.want)
		}
	}
}

// Point 5: parameter names are matched without regard to case and never silently ignored; fixed
// value sets are checked before any task exists, case fields are bounded and one line.
func TestFidelityParameters(t *testing.T) {
	testenv.Tool(t, "ewfinfo")
	e := newEnv(t)
	tf := url.QueryEscape(e.targets)
	// Names in any case take effect.
	m := e.wait(e.mustStart("/api/start-image?SOURCE=SATA1&targetfolder=" + tf + "&targettype=raw&TARGETFILE=lower"))
	if !strings.HasSuffix(m["target"].(string), "lower.raw") {
		t.Fatalf("targettype=raw made %v", m["target"])
	}
	key := e.mustStart("/api/start-image?source=SATA1&targetFolder=" + tf + "&e01comp=false&E01CASE=lc-1&targetFile=nocomp")
	e.wait(key)
	rec, err := e.st.Task(key)
	if err != nil || rec.Options.E01.Compression != "none" || rec.Options.Case.Number != "lc-1" {
		t.Fatalf("e01comp=false, E01CASE=lc-1 stored as %+v (%v)", rec.Options, err)
	}
	if out, err := exec.Command("ewfinfo", filepath.Join(e.targets, "nocomp.E01")).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "no compression") || !strings.Contains(string(out), "lc-1") {
		t.Fatalf("ewfinfo: %v\n%s", err, out)
	}
	c := e.json("/api/create-case?SOURCE=sata3&caseid=lower-case-id&EvidenceID=ev-7")
	if c["caseId"] != "lower-case-id" || !strings.Contains(mustBody(e, "/api/scan-port?sata3"), `"evidenceId":"ev-7"`) {
		t.Fatalf("create-case with lower-case names: %v", c)
	}
	if code, body := e.get("/api/source-drives?TOKEN=whatever"); code != 200 {
		t.Fatalf("token is known everywhere: %d %s", code, body)
	}

	long := strings.Repeat("C", MaxCaseField)
	longUTF8 := strings.Repeat("é", MaxCaseField/2) // 510 bytes
	// At the limit, ewfinfo reads every value (one more byte and it cannot print the header).
	e.wait(e.mustStart("/api/start-image?source=SATA1&targetFolder=" + tf + "&targetFile=long&e01Case=" + long +
		"&e01Notes=" + long + "&e01Desc=" + url.QueryEscape(longUTF8)))
	out, err := exec.Command("ewfinfo", filepath.Join(e.targets, "long.E01")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Case number:\t\t"+long+"\n") || !strings.Contains(string(out), "Notes:\t\t\t"+long+"\n") ||
		!strings.Contains(string(out), longUTF8) {
		t.Fatalf("ewfinfo of case fields at the limit: %v\n%s", err, out)
	}

	before := e.taskCount()
	img := "/api/start-image?source=SATA1&targetFolder=" + url.QueryEscape(e.targets+"/refused")
	logical := "/api/start-logical?source=SATA1&targetFolder=" + url.QueryEscape(e.targets+"/refused")
	for _, c := range []struct{ path, want string }{
		{img + "&targetFolderr=x", `unknown parameter "targetFolderr": /api/start-image accepts source, shared, targetFile`},
		{img + "&e01Compresion=best", `unknown parameter "e01Compresion"`},
		{img + "&l01Case=x", `unknown parameter "l01Case"`},
		{logical + "&e01Case=x", `unknown parameter "e01Case"`},
		{"/api/check-task?taskKey=x&verbose=1", `unknown parameter "verbose": /api/check-task accepts taskKey, source (and token)`},
		{"/api/source-drives?all=1", `unknown parameter "all": /api/source-drives takes no parameters`},
		{"/api/scan-port?SATA1&x=1", `unknown parameter "x"`},
		{img + "&source=SATA3", "source is given more than once"},
		{img + "&targetType=raw&TargetType=e01", "targetType is given more than once"},
		{img + "&targetType=vhd", "targetType"},
		{img + "&e01Compression=ultra", `e01Compression="ultra": accepted values are none, empty-block, fast, best`},
		{img + "&e01Comp=maybe", "e01Comp"},
		{img + "&aff4Comp=zstd", "aff4Comp"},
		{img + "&hash=crc32&targetType=raw", "hash"},
		{img + "&hash=sha256", "an E01 image stores MD5 and SHA1 only"},
		{img + "&hash=md5+sha512", "an E01 image stores MD5 and SHA1 only"},
		{img + "&dnsLookup=sometimes", `dnsLookup="sometimes": accepted values are`},
		{img + "&verify=perhaps", "verify"},
		{img + "&retries=-1", "retries"},
		{img + "&e01Segment=abc", "e01Segment"},
		{logical + "&l01Segment=abc", "l01Segment"},
		{logical + "&l01Segment=-1", "l01Segment"},
		{logical + "&targetType=zip&l01Segment=2", "l01Segment applies to targetType=l01 only"},
		{img + "&e01Case=a%00b", "e01Case contains a control character"},
		{img + "&e01Notes=line%0Abreak", "e01Notes contains a control character"},
		{img + "&aff4Inv=tab%09x", "aff4Inv contains a control character"},
		{logical + "&l01Desc=x%00", "l01Desc contains a control character"},
		{img + "&e01Case=" + long + "C", fmt.Sprintf("e01Case is %d bytes long in UTF-8; at most %d", MaxCaseField+1, MaxCaseField)},
		{img + "&e01Inv=" + url.QueryEscape(longUTF8+"é"), "e01Inv is 512 bytes long"},
		{img + "&e01Evid=%FF", "not valid UTF-8"},
	} {
		if code, msg := e.apiError(c.path); code != 400 || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %s (want 400 %q)", c.path, code, msg, c.want)
		}
	}
	if n := e.taskCount(); n != before {
		t.Errorf("refused requests made %d tasks", n-before)
	}
	if _, err := os.Stat(filepath.Join(e.targets, "refused")); err == nil {
		t.Errorf("a refused request created the target folder")
	}
}

// Point 6: the port as a response displays it ("SATA 1") is accepted wherever a port is.
func TestFidelityDisplayedPort(t *testing.T) {
	e := newEnv(t)
	key := e.mustStart("/api/start-image?source=SATA%201&targetType=raw&targetFolder=" + url.QueryEscape(e.targets))
	m := e.wait(key)
	if m["port"] != "SATA 1" {
		t.Fatalf("check-task port: %v", m["port"])
	}
	for _, src := range []string{"SATA%201", "sata+1", "SATA%201%20SanDisk%20SDSSDA120G%20171108456213", "SATA1+SDSSDA120G+171108456213"} {
		if got := e.json("/api/check-task?source=" + src); got["taskKey"] != key {
			t.Errorf("check-task?source=%s: %v", src, got)
		}
	}
	if sp := e.json("/api/scan-port?port=SATA%201"); sp["serial"] != "171108456213" {
		t.Errorf("scan-port?port=SATA 1: %v", sp)
	}
	if sp := e.json("/api/set-port-mode?port=SATA%202&mode=source"); sp["port"] != "SATA2" {
		t.Errorf("set-port-mode?port=SATA 2: %v", sp)
	}
}

// Point 7: progress is the whole task's and never goes back; the hashes come with the end.
func TestFidelityProgressOneWay(t *testing.T) {
	e := newEnv(t)
	key := e.mustStart("/api/start-image?source=SATA4&targetType=e01&targetFolder=" + url.QueryEscape(e.targets))
	last, steps := -1, map[string]bool{}
	for deadline := time.Now().Add(time.Minute); ; {
		var m CheckTaskResponse
		if err := json.Unmarshal([]byte(mustBody(e, "/api/check-task?taskKey="+url.QueryEscape(key))), &m); err != nil {
			t.Fatal(err)
		}
		var p int
		fmt.Sscan(m.Progress, &p)
		if p < last {
			t.Fatalf("progress went back from %d to %d (step %s)", last, p, m.TaskStep)
		}
		last = p
		steps[m.TaskStep] = true
		if m.State != "in-progress" {
			if m.State != "completed" || p != 100 || m.Hashes["MD5"] == "" || m.StepProgress != "100" {
				t.Fatalf("end: %+v", m)
			}
			break
		}
		if len(m.Hashes) != 0 {
			t.Fatalf("hashes while %s: %+v", m.TaskStep, m)
		}
		if p > 99 {
			t.Fatalf("100%% before the end: %+v", m)
		}
		if time.Now().After(deadline) {
			t.Fatal("task did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !steps["imaging"] {
		t.Errorf("never saw the imaging step: %v", steps)
	}
}

// Point 8: a drive is evidence in one case at a time unless moved; generated case ids never
// collide; allowNonUniqueCaseNames can be set.
func TestFidelityCases(t *testing.T) {
	e := newEnv(t)
	if c := e.json("/api/create-case?source=SATA1&caseId=A"); c["caseId"] != "A" {
		t.Fatalf("create-case A: %v", c)
	}
	if code, body := e.get("/api/create-case?source=SATA1&caseId=B"); code != 409 || !strings.Contains(body, "is evidence in case A") || !strings.Contains(body, "move=true") {
		t.Fatalf("relink without move: %d %s", code, body)
	}
	if code, _ := e.get("/api/edit-case?caseId=B"); code != 404 {
		t.Fatalf("the refused case B exists")
	}
	if c := e.json("/api/create-case?source=SATA1&caseId=B&move=true"); c["caseId"] != "B" {
		t.Fatalf("move: %v", c)
	}
	if sp := e.json("/api/scan-port?SATA1"); sp["caseId"] != "B" {
		t.Fatalf("after move the drive is in %v", sp["caseId"])
	}
	if a := e.json("/api/edit-case?caseId=A"); len(a["evidence"].([]any)) != 0 {
		t.Fatalf("case A still lists the moved drive: %v", a)
	}
	// Generated ids: two at once never collide.
	var wg sync.WaitGroup
	ids := make([]string, 2)
	codes := make([]int, 2)
	for i, port := range []string{"SATA3", "SATA4"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body string
			codes[i], body = e.get("/api/create-case?source=" + port)
			var m map[string]any
			json.Unmarshal([]byte(body), &m)
			ids[i], _ = m["caseId"].(string)
		}()
	}
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 || ids[0] == ids[1] || !strings.HasPrefix(ids[0], "CASE-") {
		t.Fatalf("generated ids: %v %v", codes, ids)
	}
	// Non-unique case names: off by default, then settable.
	if code, body := e.get("/api/create-case?source=SATA3&caseId=A&move=true"); code != 409 || !strings.Contains(body, "allowNonUniqueCaseNames") {
		t.Fatalf("duplicate case id: %d %s", code, body)
	}
	if s := e.json("/api/appliance-settings?allowNonUniqueCaseNames=true"); s["allowNonUniqueCaseNames"] != true {
		t.Fatalf("set: %v", s)
	}
	if s := e.json("/api/appliance-settings"); s["allowNonUniqueCaseNames"] != true {
		t.Fatalf("read back: %v", s)
	}
	if c := e.json("/api/create-case?source=SATA3&caseId=A&move=true"); c["caseId"] != "A" {
		t.Fatalf("duplicate id with the setting on: %v", c)
	}
	if code, _ := e.get("/api/appliance-settings?allowNonUniqueCaseNames=sometimes"); code != 400 {
		t.Fatalf("bad setting value: %d", code)
	}
}

// Point 9: simultaneous starts name the real task; one port per scan; a refused start uses up
// no task number; a source whose port and drive disagree is 409.
func TestFidelityConcurrentAndAmbiguous(t *testing.T) {
	e := newEnv(t)
	tf := url.QueryEscape(e.targets)
	// A start refused after its checks (the image exists) gives its number back.
	if err := os.MkdirAll(e.targets, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.targets, "taken.raw"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := e.get("/api/start-image?source=SATA4&targetType=raw&targetFile=taken&targetFolder=" + tf); code != 409 {
		t.Fatalf("existing image: %d %s", code, body)
	}
	// A task on SATA1, and SATA3 identified: the drive there is known.
	other := e.mustStart("/api/start-image?source=SATA1&targetType=raw&targetFolder=" + tf)
	e.wait(other)
	for e.json("/api/scan-port?SATA3")["state"] != "ready" {
		time.Sleep(20 * time.Millisecond)
	}
	type answer struct {
		code int
		body string
	}
	answers := make([]answer, 3)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i].code, answers[i].body = e.get(fmt.Sprintf("/api/start-image?source=SATA4&targetType=raw&targetFile=c%d&targetFolder=%s", i, tf))
		}()
	}
	wg.Wait()
	var key string
	for _, a := range answers {
		if a.code == 200 {
			if key != "" {
				t.Fatalf("two starts on one port: %v", answers)
			}
			key = a.body
		}
	}
	if !strings.HasPrefix(key, "image_0_Slow%20Disk_SLOW1_") {
		t.Fatalf("key %q: the refused start used up number 0 (answers %v)", key, answers)
	}
	for _, a := range answers {
		if a.code != 200 && (a.code != 409 || !strings.Contains(a.body, "busy with task "+key)) {
			t.Errorf("refused start: %d %s (want 409 naming %s)", a.code, a.body, key)
		}
	}
	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/api/scan-port?SATA1&SATA3", 400, "one port per call: /api/scan-port was given SATA1, SATA3"},
		{"/api/scan-port?SATA1&port=SATA3", 400, "one port per call"},
		{"/api/check-task?source=SATA3+SanDisk+SDSSDA120G+171108456213", 409, "the drive on port SATA3 is ST500LM012 HN-M500MBB S2RWJ9CD415935, not SanDisk SDSSDA120G 171108456213"},
		{"/api/check-task?source=SATA2+SanDisk+SDSSDA120G+171108456213", 409, "the drive SanDisk SDSSDA120G 171108456213 is not on port SATA2 (its newest task ran on SATA1)"},
		{"/api/check-task?source=SATA2+Slow+Disk+SLOW1", 409, "is not on port SATA2"},
		{"/api/check-task?source=SATA1+SanDisk+SDSSDA120G+171108456213", 200, other},
		{"/api/check-task?source=SATA4+Slow+Disk+SLOW1", 200, key},
	} {
		if code, msg := e.apiError(c.path); code != c.code || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %s (want %d %q)", c.path, code, msg, c.code, c.want)
		}
	}
	e.wait(key)
}

// Point 10: the report's headers are the document's: attachment; filename=<taskKey>.zip (.html).
func TestFidelityReportHeaders(t *testing.T) {
	e := newEnv(t)
	img := e.mustStart("/api/start-image?source=SATA1&targetType=raw&targetFolder=" + url.QueryEscape(e.targets))
	diag := e.mustStart("/api/diagnose?source=SATA3")
	e.wait(img)
	e.wait(diag)
	for _, c := range []struct{ key, ext, typ string }{{img, ".zip", "application/zip"}, {diag, ".html", "text/html; charset=utf-8"}} {
		code, body, h := e.getFull("/api/report?taskKey=" + url.QueryEscape(c.key))
		if code != 200 || len(body) == 0 {
			t.Fatalf("report %s: %d", c.key, code)
		}
		if got, want := h.Get("Content-Disposition"), "attachment; filename="+c.key+c.ext; got != want {
			t.Errorf("Content-Disposition %q, want %q", got, want)
		}
		if got := h.Get("Content-Type"); got != c.typ {
			t.Errorf("Content-Type %q, want %q", got, c.typ)
		}
	}
}

// Point 12: the E01 Notes value has no stray space when no notes are given.
func TestFidelityE01Notes(t *testing.T) {
	ewfinfo := testenv.Tool(t, "ewfinfo")
	e := newEnv(t)
	tf := url.QueryEscape(e.targets)
	for _, c := range []struct{ name, query, notes string }{
		{"none", "&targetFile=n0", "model: SanDisk SDSSDA120G, serial: 171108456213"},
		{"given", "&targetFile=n1&e01Notes=seized+at+desk", "seized at desk"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.wait(e.mustStart("/api/start-image?source=SATA1&targetFolder=" + tf + c.query))
			name := strings.TrimPrefix(c.query, "&targetFile=")
			name, _, _ = strings.Cut(name, "&")
			out, err := exec.Command(ewfinfo, filepath.Join(e.targets, name+".E01")).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "\tNotes:\t\t\t"+c.notes+"\n") {
				t.Fatalf("ewfinfo notes (want %q): %v\n%s", c.notes, err, out)
			}
		})
	}
}
