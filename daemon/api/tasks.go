package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/evidenced/evidenced/daemon/tasks"
	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/imaging/filter"
	"github.com/evidenced/evidenced/imaging/target"
	"github.com/evidenced/evidenced/store"
)

// secret parameters never leave the request.
var secret = map[string]bool{"targetFolderPwd": true, "reportFolderPwd": true, "password": true, "token": true}

func params(q url.Values) map[string]string {
	out := map[string]string{}
	for k, v := range q {
		if secret[k] || len(v) == 0 {
			continue
		}
		out[k] = v[0]
	}
	return out
}

func targetSpec(q url.Values, prefix string) target.Spec {
	return target.Spec{
		Folder: strings.TrimSpace(q.Get(prefix + "Folder")), Login: q.Get(prefix + "FolderLogin"),
		Password: q.Get(prefix + "FolderPwd"), Domain: q.Get(prefix + "FolderDomain"),
		MountOptions: q.Get("mountOptions"), DNSLookup: q.Get("dnsLookup"),
	}
}

// validFileName checks targetFile: a plain file name without extension.
func validFileName(name string) error {
	if len(name) > 200 {
		return bad("targetFile is longer than 200 characters")
	}
	if name == "." || name == ".." || strings.ContainsAny(name, `/\:*?"<>|`) {
		return bad("targetFile=%q: a file name without folders or any of / \\ : * ? \" < > |", name)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return bad("targetFile contains control characters")
		}
	}
	return nil
}

// trueByDefault reads boolean parameters that default to true into p, as "true" or "false".
func trueByDefault(q url.Values, p map[string]string, names ...string) error {
	for _, name := range names {
		v, err := boolParam(q, name, true)
		if err != nil {
			return err
		}
		p[name] = strconv.FormatBool(v)
	}
	return nil
}

// hashList parses a hash choice: md5, sha1, md5+sha1, sha256, sha512 (or a comma list).
func hashList(param, v string, def []string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return def, nil
	}
	var out []string
	for _, h := range strings.FieldsFunc(strings.ToLower(v), func(r rune) bool { return r == '+' || r == ',' || r == ' ' }) {
		switch h {
		case "md5", "sha1", "sha256", "sha512":
			out = append(out, strings.ToUpper(h))
		default:
			return nil, bad("%s=%q: accepted values are md5, sha1, md5+sha1, sha256, sha512", param, v)
		}
	}
	return out, nil
}

func (s *Server) startImage(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	srcID, err := required(q, "source")
	if err != nil {
		return err
	}
	if _, err := required(q, "targetFolder"); err != nil {
		return err
	}
	typ := strings.ToLower(strings.TrimSpace(q.Get("targetType")))
	if typ == "" {
		typ = "e01"
	}
	p := params(q)
	switch typ {
	case "e01", "aff4", "raw":
	default:
		return bad("targetType=%q: accepted values are e01, aff4, raw", q.Get("targetType"))
	}
	if !s.formatAvailable(typ) {
		return bad("targetType=%s is not available on this appliance yet; use targetType=raw", typ)
	}
	tf := strings.TrimSpace(q.Get("targetFile"))
	if tf != "" {
		if err := validFileName(tf); err != nil {
			return err
		}
	}
	if err := trueByDefault(q, p, "saveReport", "e01Comp", "verify"); err != nil {
		return err
	}
	if v := strings.TrimSpace(q.Get("e01Segment")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1<<20 {
			return bad("e01Segment=%q: segment size in GB, a whole number, at least 1 (0 = one file)", v)
		}
		p["e01Segment"] = strconv.Itoa(n)
	}
	if v := strings.ToLower(strings.TrimSpace(q.Get("aff4Comp"))); v != "" {
		switch v {
		case "lz4", "snappy":
		case "not compressed", "none", "not-compressed", "stored":
			v = "none"
		default:
			return bad("aff4Comp=%q: accepted values are lz4, snappy, not compressed", q.Get("aff4Comp"))
		}
		p["aff4Comp"] = v
	}
	hashes := []string{"MD5", "SHA1"}
	if typ == "aff4" {
		if hashes, err = hashList("aff4Hash", q.Get("aff4Hash"), hashes); err != nil {
			return err
		}
	} else if hashes, err = hashList("hash", q.Get("hash"), hashes); err != nil {
		return err
	}
	p["hashes"] = strings.Join(hashes, ",")
	if v := strings.TrimSpace(q.Get("retries")); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 100 {
			return bad("retries=%q: a whole number from 0 to 100", v)
		}
	}
	port, drive, err := s.resolveDrive(r.Context(), "source", srcID)
	if err != nil {
		return err
	}
	if port.Mode() != hal.ModeSource {
		return conflict("port %s is in target mode; switch it to source (set-port-mode) to image its drive", port.Name())
	}
	caseID, evID := s.caseFill(drive.Identity(), p, typ)
	key, err := s.tasks.StartImage(r.Context(), tasks.ImageRequest{
		Port: port, Drive: drive, Spec: targetSpec(q, "target"), Params: p, Type: typ, TargetFile: tf,
		Hashes: hashes, CaseID: caseID, EvidenceID: evID,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err = w.Write([]byte(key))
	return err
}

// caseFill links a task to the drive's case, filling the image's case metadata (<prefix>Case,
// <prefix>Evid, <prefix>Inv, <prefix>Desc) from it where the request left them empty.
func (s *Server) caseFill(id hal.Identity, p map[string]string, prefix string) (caseID, evID string) {
	c, ev, err := s.st.CaseByDrive(id.Model, id.Serial)
	if err != nil {
		return "", ""
	}
	fill := func(k, v string) {
		if strings.TrimSpace(p[k]) == "" && v != "" {
			p[k] = v
		}
	}
	fill(prefix+"Case", c.CaseID)
	fill(prefix+"Evid", ev.EvidenceID)
	fill(prefix+"Inv", firstNonEmpty(ev.EvidenceExaminer, c.CaseExaminer))
	fill(prefix+"Desc", c.CaseDescription)
	return c.CaseID, ev.EvidenceID
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// formatAvailable says which image types this build writes.
func (s *Server) formatAvailable(typ string) bool { return tasks.FormatAvailable(typ) }

func (s *Server) startLogical(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	srcID, err := required(q, "source")
	if err != nil {
		return err
	}
	if _, err := required(q, "targetFolder"); err != nil {
		return err
	}
	p := params(q)
	typ := strings.ToLower(strings.TrimSpace(q.Get("targetType")))
	switch typ {
	case "":
		typ = "l01"
	case "l01", "zip":
	default:
		return bad("targetType=%q: accepted values for logical imaging are L01, zip", q.Get("targetType"))
	}
	tf := strings.TrimSpace(q.Get("targetFile"))
	if tf != "" {
		if err := validFileName(tf); err != nil {
			return err
		}
	}
	if err := trueByDefault(q, p, "saveReport", "compression", "verify"); err != nil {
		return err
	}
	var hashes []string
	switch h := strings.ToLower(strings.TrimSpace(q.Get("hash"))); h {
	case "", "md5+sha1", "md5 sha1", "md5,sha1":
		hashes = []string{"MD5", "SHA1"}
	case "md5":
		hashes = []string{"MD5"}
	case "sha1":
		hashes = []string{"SHA1"}
	case "none":
	default:
		return bad("hash=%q: accepted values are md5, sha1, md5+sha1, none", q.Get("hash"))
	}
	p["hashes"] = strings.Join(hashes, ",")
	var flt *filter.Filter
	if name := strings.TrimSpace(q.Get("settings")); name != "" {
		var f filter.Filter
		if err := s.st.Preset(name, &f); errors.Is(err, store.ErrNotFound) {
			return bad("settings=%q: no such filter preset (GET /api/settings lists them)", name)
		} else if err != nil {
			return fmt.Errorf("read preset %q: %w", name, err)
		}
		flt = &f
	}
	port, drive, err := s.resolveDrive(r.Context(), "source", srcID)
	if err != nil {
		return err
	}
	if port.Mode() != hal.ModeSource {
		return conflict("port %s is in target mode; switch it to source (set-port-mode) to image its drive", port.Name())
	}
	caseID, evID := s.caseFill(drive.Identity(), p, "l01")
	key, err := s.tasks.StartLogical(r.Context(), tasks.LogicalRequest{
		Port: port, Drive: drive, Spec: targetSpec(q, "target"), Params: p, Type: typ, TargetFile: tf,
		Filter: flt, Hashes: hashes, CaseID: caseID, EvidenceID: evID,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err = w.Write([]byte(key))
	return err
}

func (s *Server) diagnose(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	srcID, err := required(q, "source")
	if err != nil {
		return err
	}
	port, drive, err := s.resolveDrive(r.Context(), "source", srcID)
	if err != nil {
		return err
	}
	req := tasks.DiagnoseRequest{Port: port, Drive: drive, Params: params(q)}
	if spec := targetSpec(q, "report"); spec.Folder != "" {
		req.Report = &spec
	}
	key, err := s.tasks.StartDiagnose(r.Context(), req)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err = w.Write([]byte(key))
	return err
}

// findTask resolves taskKey= or source= to a task.
func (s *Server) findTask(r *http.Request) (*store.Task, error) {
	q := query(r)
	if k := strings.TrimSpace(q.Get("taskKey")); k != "" {
		return s.tasks.Task(k)
	}
	src := strings.TrimSpace(q.Get("source"))
	if src == "" {
		return nil, bad("taskKey or source is required")
	}
	fields := strings.Fields(src)
	if len(fields) == 2 {
		return nil, bad("source=%q: give the port alone, or the port, the model and the serial", src)
	}
	p, err := s.canonicalPort(fields[0])
	if err != nil {
		return nil, err
	}
	if len(fields) >= 3 {
		model, serial := strings.Join(fields[1:len(fields)-1], " "), fields[len(fields)-1]
		all, err := s.tasks.Tasks()
		if err != nil {
			return nil, err
		}
		for _, t := range all {
			if t.Serial == serial && modelMatches(t.Model, model) {
				return s.tasks.Task(t.Key) // the listing leaves out the report section
			}
		}
		return nil, notFound("no task for drive %s %s", model, serial)
	}
	if k := s.tasks.BusyTask(p.Name()); k != "" && !strings.HasPrefix(k, "starting-") {
		return s.tasks.Task(k)
	}
	if d := p.Drive(); d != nil && p.State() == hal.StateReady {
		id := d.Identity()
		return s.tasks.LatestFor(id.Model, id.Serial)
	}
	all, err := s.tasks.Tasks()
	if err != nil {
		return nil, err
	}
	for _, t := range all {
		if t.Port == p.Name() {
			return s.tasks.Task(t.Key)
		}
	}
	return nil, notFound("no task on port %s", p.Name())
}

// portDisplay writes a port as the TaskForce does in check-task: "SATA 4".
func portDisplay(name string) string {
	i := strings.IndexFunc(name, unicode.IsDigit)
	if i <= 0 {
		return name
	}
	return name[:i] + " " + name[i:]
}

func (s *Server) checkTask(w http.ResponseWriter, r *http.Request) error {
	t, err := s.findTask(r)
	if err != nil {
		return err
	}
	done, total := t.BytesDone, t.BytesTotal
	var rate float64
	if d, tot, rt, ok := s.tasks.Live(t.Key); ok {
		done, total, rate = d, tot, rt
	}
	out := map[string]any{
		"task": t.Kind, "taskStep": t.Step, "source": t.Model + " " + t.Serial, "port": portDisplay(t.Port),
		"state": t.State, "message": t.Message, "progress": tasks.Progress(t, done, total),
		"completionDate": "", "target": t.Target, "report": t.Report,
		"taskKey": t.Key, "bytesDone": done, "bytesTotal": total,
	}
	if !t.Completed.IsZero() {
		out["completionDate"] = t.Completed.Local().Format("2006-01-02 15:04")
	}
	if len(t.Hashes) > 0 {
		out["hashes"] = t.Hashes
	}
	if mbps, eta := speed(done, total, rate); eta >= 0 {
		out["mbps"] = mbps
		if total > done {
			out["eta"] = eta
		}
	}
	if len(t.BadSectors) > 0 {
		var n int64
		for _, b := range t.BadSectors {
			n += b.Count
		}
		out["unreadableSectors"] = n
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) stopTask(w http.ResponseWriter, r *http.Request) error {
	k, err := required(query(r), "taskKey")
	if err != nil {
		return err
	}
	st, err := s.tasks.Stop(k)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"state": st})
	return nil
}

func (s *Server) resumeTask(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	k, err := required(q, "taskKey")
	if err != nil {
		return err
	}
	if err := s.tasks.Resume(r.Context(), k, targetSpec(q, "target")); err != nil {
		return err
	}
	t, err := s.tasks.Task(k)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"state": t.State, "taskKey": t.Key})
	return nil
}

func (s *Server) report(w http.ResponseWriter, r *http.Request) error {
	k, err := required(query(r), "taskKey")
	if err != nil {
		return err
	}
	t, err := s.tasks.Task(k)
	if err != nil {
		return err
	}
	if !tasks.HasReport(t) {
		return notFound("task %s is %s; its report exists once it ends", t.Key, t.State)
	}
	if t.Kind == tasks.KindDiagnose {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", t.Key+".html"))
		_, err := w.Write(s.tasks.ReportFiles(t)["Report.html"])
		return err
	}
	data, err := s.tasks.ReportZip(t)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", t.Key+".zip"))
	_, err = w.Write(data)
	return err
}

var validStates = map[string]bool{tasks.StatePending: true, tasks.StateInProgress: true, tasks.StatePaused: true,
	tasks.StateCompleted: true, tasks.StateFailed: true, tasks.StateStopped: true}

func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) error {
	want := strings.ToLower(strings.TrimSpace(query(r).Get("state")))
	caseID := strings.TrimSpace(query(r).Get("caseId"))
	if want != "" && !validStates[want] {
		return bad("state=%q: accepted values are pending, in-progress, paused, completed, failed, stopped", want)
	}
	all, err := s.tasks.Tasks()
	if err != nil {
		return err
	}
	type row struct {
		TaskKey  string `json:"taskKey"`
		Task     string `json:"task"`
		State    string `json:"state"`
		Progress string `json:"progress"`
		Port     string `json:"port"`
		Source   string `json:"source"`
		CaseID   string `json:"caseId"`
	}
	out := []row{}
	for _, t := range all {
		if (want != "" && t.State != want) || (caseID != "" && t.CaseID != caseID) {
			continue
		}
		done, total := t.BytesDone, t.BytesTotal
		if d, tot, _, ok := s.tasks.Live(t.Key); ok {
			done, total = d, tot
		}
		out = append(out, row{t.Key, t.Kind, t.State, tasks.Progress(t, done, total), t.Port, t.Model + " " + t.Serial, t.CaseID})
	}
	writeJSON(w, http.StatusOK, map[string]any{"tasks": out})
	return nil
}
