package api

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"github.com/evidenced/evidenced/daemon/auth"
	"github.com/evidenced/evidenced/daemon/tasks"
	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/imaging/target"
	"github.com/evidenced/evidenced/store"
)

// presetParams merges the saved imaging preset a start-image request names (settings=) under the
// request's own parameters.
func (s *Server) applyImagingPreset(q url.Values) error {
	name := strings.TrimSpace(q.Get("settings"))
	if name == "" {
		return nil
	}
	p, err := s.preset(name, presetImaging)
	if err != nil {
		return err
	}
	for k, v := range p.Params {
		if !q.Has(k) {
			q.Set(k, v)
		}
	}
	return nil
}

func (s *Server) startImage(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, imageParams...)
	if err != nil {
		return err
	}
	srcID, err := required(q, "source")
	if err != nil {
		return err
	}
	if err := s.applyImagingPreset(q); err != nil {
		return err
	}
	opts, err := parseImageOptions(q)
	if err != nil {
		return err
	}
	port, drive, err := s.resolveDrive(r.Context(), "source", srcID)
	if err != nil {
		return err
	}
	if port.Mode() != hal.ModeSource {
		return conflict("port %s is in target mode; switch it to source (set-port-mode) to image its drive", port.Name())
	}
	caseID, evID := s.caseFill(drive.Identity(), &opts.Case)
	ctx, err := s.ownerCtx(r, q)
	if err != nil {
		return err
	}
	key, err := s.tasks.StartImage(ctx, tasks.ImageRequest{
		Port: port, Drive: drive, Spec: targetSpec(opts.Target, q, "target"), Options: opts, CaseID: caseID, EvidenceID: evID,
	})
	if err != nil {
		return err
	}
	note(r).task = key
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err = w.Write([]byte(key))
	return err
}

// caseFill links a task to the drive's case, filling the image's case metadata (case number,
// evidence number, examiner, description) from it where the request left them empty.
func (s *Server) caseFill(id hal.Identity, c *options.Case) (caseID, evID string) {
	cs, ev, err := s.st.CaseByDrive(id.Model, id.Serial)
	if err != nil {
		return "", ""
	}
	fill := func(dst *string, v string) {
		if strings.TrimSpace(*dst) == "" && v != "" {
			*dst = v
		}
	}
	fill(&c.Number, cs.CaseID)
	fill(&c.Evidence, ev.EvidenceID)
	fill(&c.Examiner, firstNonEmpty(ev.EvidenceExaminer, cs.CaseExaminer))
	fill(&c.Description, cs.CaseDescription)
	return cs.CaseID, ev.EvidenceID
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func (s *Server) startLogical(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, logicalParams...)
	if err != nil {
		return err
	}
	srcID, err := required(q, "source")
	if err != nil {
		return err
	}
	opts, err := parseLogicalOptions(q)
	if err != nil {
		return err
	}
	if opts.Settings != "" {
		p, err := s.preset(opts.Settings, presetLogical)
		if err != nil {
			return err
		}
		opts.Filter = p.Filter
	}
	port, drive, err := s.resolveDrive(r.Context(), "source", srcID)
	if err != nil {
		return err
	}
	if port.Mode() != hal.ModeSource {
		return conflict("port %s is in target mode; switch it to source (set-port-mode) to image its drive", port.Name())
	}
	caseID, evID := s.caseFill(drive.Identity(), &opts.Case)
	ctx, err := s.ownerCtx(r, q)
	if err != nil {
		return err
	}
	key, err := s.tasks.StartLogical(ctx, tasks.LogicalRequest{
		Port: port, Drive: drive, Spec: targetSpec(opts.Target, q, "target"), Options: opts, CaseID: caseID, EvidenceID: evID,
	})
	if err != nil {
		return err
	}
	note(r).task = key
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err = w.Write([]byte(key))
	return err
}

func (s *Server) diagnose(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, diagParams...)
	if err != nil {
		return err
	}
	srcID, err := required(q, "source")
	if err != nil {
		return err
	}
	rep, err := targetOptions(q, "report")
	if err != nil {
		return err
	}
	port, drive, err := s.resolveDrive(r.Context(), "source", srcID)
	if err != nil {
		return err
	}
	req := tasks.DiagnoseRequest{Port: port, Drive: drive}
	if rep.Folder != "" {
		spec := targetSpec(rep, q, "report")
		req.Report, req.Options.Report = &spec, &rep
	}
	ctx, err := s.ownerCtx(r, q)
	if err != nil {
		return err
	}
	key, err := s.tasks.StartDiagnose(ctx, req)
	if err != nil {
		return err
	}
	note(r).task = key
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err = w.Write([]byte(key))
	return err
}

// ownerCtx is the request's context naming the user as the owner of the task it starts;
// shared=true lets every examiner see and stop it.
func (s *Server) ownerCtx(r *http.Request, q url.Values) (context.Context, error) {
	shared, err := boolParam(q, "shared", false)
	if err != nil {
		return nil, err
	}
	return tasks.WithOwner(r.Context(), who(r).User, shared), nil
}

// mayAccess says whether the caller sees a task: admins see all; examiners their own, shared
// ones, and those started without user management.
func mayAccess(id identity, t *store.Task) bool {
	return id.Role == auth.Admin || t.Owner == "" || t.Owner == id.User || t.Shared
}

// visibleKeys answers whether the caller may see a task by key, for the event stream; owner and
// sharing are fixed when a task starts, so each key is looked up once per stream.
func (s *Server) visibleKeys(id identity) func(key string) bool {
	if id.Role == auth.Admin {
		return func(string) bool { return true }
	}
	seen := map[string]bool{}
	return func(key string) bool {
		v, ok := seen[key]
		if !ok {
			t, err := s.tasks.TaskRecord(key)
			v = err == nil && mayAccess(id, t)
			seen[key] = v
		}
		return v
	}
}

// visibleTask reads a task the caller may see; another examiner's task does not exist for them.
func (s *Server) visibleTask(r *http.Request, key string) (*store.Task, error) {
	t, err := s.tasks.TaskRecord(key)
	if err != nil {
		return nil, err
	}
	note(r).task = t.Key // the stored key: the request may spell it escaped or not
	if !mayAccess(who(r), t) {
		return nil, notFound("no task %s among yours or the shared ones", key)
	}
	return t, nil
}

// findTask resolves taskKey= or source= to a task the caller may see.
func (s *Server) findTask(r *http.Request) (*store.Task, error) {
	t, err := s.lookupTask(r)
	if err != nil {
		return nil, err
	}
	if !mayAccess(who(r), t) {
		return nil, notFound("no task %s among yours or the shared ones", t.Key)
	}
	return t, nil
}

// lookupTask finds the task check-task and its kin name: by taskKey, or by source (a port, or a
// drive on a port).
func (s *Server) lookupTask(r *http.Request) (*store.Task, error) {
	q, err := query(r, "taskKey", "source")
	if err != nil {
		return nil, err
	}
	if k := strings.TrimSpace(q.Get("taskKey")); k != "" {
		return s.tasks.TaskRecord(k)
	}
	src := strings.TrimSpace(q.Get("source"))
	if src == "" {
		return nil, bad("taskKey or source is required")
	}
	did, err := parseDriveID("source", src)
	if err != nil {
		return nil, err
	}
	p, err := s.canonicalPort(did.port)
	if err != nil {
		return nil, err
	}
	var onPort *hal.Identity
	if d := p.Drive(); d != nil && p.State() == hal.StateReady {
		id := d.Identity()
		onPort = &id
	}
	if did.serial != "" {
		return s.driveTask(p.Name(), did, onPort)
	}
	return s.portTask(p.Name(), onPort)
}

// driveTask is the newest task of the drive did names (`PORT MODEL SERIAL`): a conflict when
// another drive is on the port, or when the drive is not there and its newest task ran elsewhere.
// onPort is the drive on the port, nil when there is none.
func (s *Server) driveTask(port string, did driveID, onPort *hal.Identity) (*store.Task, error) {
	if onPort != nil && (onPort.Serial != did.serial || !modelMatches(onPort.Model, did.model)) {
		return nil, conflict("the drive on port %s is %s %s, not %s %s", port, onPort.Model, onPort.Serial, did.model, did.serial)
	}
	all, err := s.tasks.Tasks()
	if err != nil {
		return nil, err
	}
	var elsewhere string
	for _, t := range all { // newest first
		if t.Serial != did.serial || !modelMatches(t.Model, did.model) {
			continue
		}
		if onPort != nil || t.Port == port {
			return t, nil
		}
		if elsewhere == "" {
			elsewhere = t.Port
		}
	}
	if elsewhere != "" {
		return nil, conflict("the drive %s %s is not on port %s (its newest task ran on %s)", did.model, did.serial, port, elsewhere)
	}
	return nil, notFound("no task for drive %s %s", did.model, did.serial)
}

// portTask is the task of a bare port: the one running there, else the newest of the drive on
// it (onPort, nil when none), else the newest that ran on the port.
func (s *Server) portTask(port string, onPort *hal.Identity) (*store.Task, error) {
	if k := s.tasks.BusyTask(port); k != "" && !tasks.Starting(k) {
		return s.tasks.TaskRecord(k)
	}
	if onPort != nil {
		return s.tasks.LatestFor(onPort.Model, onPort.Serial)
	}
	all, err := s.tasks.Tasks()
	if err != nil {
		return nil, err
	}
	for _, t := range all {
		if t.Port == port {
			return t, nil
		}
	}
	return nil, notFound("no task on port %s", port)
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
	writeJSON(w, http.StatusOK, s.checkTaskResponse(t))
	return nil
}

// ended reports whether a task is over (its hashes are final).
func ended(state string) bool {
	return state == tasks.StateCompleted || state == tasks.StateFailed || state == tasks.StateStopped
}

func (s *Server) checkTaskResponse(t *store.Task) CheckTaskResponse {
	st := s.tasks.Status(t)
	out := CheckTaskResponse{
		Task: t.Kind, TaskStep: t.Step, Source: t.Model + " " + t.Serial, Port: portDisplay(t.Port),
		State: t.State, Message: t.Message, Progress: st.Progress, Target: t.Target, Report: t.Report,
		Hashes: map[string]string{}, TaskKey: t.Key, StepProgress: st.StepProgress,
		BytesDone: st.BytesDone, BytesTotal: st.BytesTotal, Details: t.Details, Verified: t.Verified,
		UnreadableSectors: badCount(t.BadSectors),
	}
	if t.State == tasks.StateCompleted && t.Message != "completed" && t.Details == "" {
		// Records written before details had their own field kept them in the message.
		out.Message, out.Details = "completed", strings.TrimPrefix(strings.TrimPrefix(t.Message, "completed"), "; ")
		out.Verified = strings.HasSuffix(t.Message, "verified")
	}
	if !t.Completed.IsZero() {
		out.CompletionDate = t.Completed.Local().Format("2006-01-02 15:04")
	}
	if ended(t.State) {
		for k, v := range t.Hashes {
			out.Hashes[k] = v
		}
	}
	if mbps, eta := speed(st.BytesDone, st.BytesTotal, st.Rate); eta >= 0 {
		out.MBps = mbps
		if st.BytesTotal > st.BytesDone {
			out.ETA = &eta
		}
	}
	return out
}

func badCount(rs []store.SectorRange) int64 {
	var n int64
	for _, b := range rs {
		n += b.Count
	}
	return n
}

func (s *Server) stopTask(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "taskKey")
	if err != nil {
		return err
	}
	k, err := required(q, "taskKey")
	if err != nil {
		return err
	}
	if _, err := s.visibleTask(r, k); err != nil {
		return err
	}
	st, err := s.tasks.Stop(k)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, StopTaskResponse{State: st})
	return nil
}

func (s *Server) resumeTask(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "taskKey", "targetFolderLogin", "targetFolderPwd", "targetFolderDomain", "mountOptions", "dnsLookup")
	if err != nil {
		return err
	}
	k, err := required(q, "taskKey")
	if err != nil {
		return err
	}
	if _, err := s.visibleTask(r, k); err != nil {
		return err
	}
	tgt, err := targetOptions(q, "target")
	if err != nil {
		return err
	}
	if err := s.tasks.Resume(r.Context(), k, targetSpec(tgt, q, "target")); err != nil {
		return err
	}
	t, err := s.tasks.TaskRecord(k)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ResumeTaskResponse{State: t.State, TaskKey: t.Key})
	return nil
}

func (s *Server) report(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "taskKey")
	if err != nil {
		return err
	}
	k, err := required(q, "taskKey")
	if err != nil {
		return err
	}
	if _, err := s.visibleTask(r, k); err != nil {
		return err
	}
	t, err := s.tasks.Task(k) // with the report section the report is made of
	if err != nil {
		return err
	}
	if !tasks.HasReport(t) {
		return notFound("task %s is %s; its report exists once it ends", t.Key, t.State)
	}
	if t.Kind == tasks.KindDiagnose {
		var b bytes.Buffer
		if err := s.tasks.WriteReportHTML(&b, t); err != nil {
			return fmt.Errorf("render the report of %s: %w", t.Key, err)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Disposition", attachment(t.Key+".html"))
		_, err := w.Write(b.Bytes())
		return err
	}
	// The archive goes out as it is made: a logical task's report holds its whole file list in
	// four forms. Past the first byte an error (the client gone) can only end the response, which
	// leaves the client an archive without its central directory, not one that passes for whole.
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", attachment(t.Key+".zip"))
	if err := s.tasks.WriteReportZip(w, t); err != nil {
		s.log.Warn("report archive not sent whole", "task", t.Key, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// attachment is the Content-Disposition of a report: `attachment; filename=<taskKey>.zip` as the
// document writes it (a task key is one token: letters, digits, _ - . and %), quoted only if a
// name ever needs it.
func attachment(name string) string {
	if strings.IndexFunc(name, func(r rune) bool {
		return r > 0x7e || r <= ' ' || strings.ContainsRune(`"\;,()<>@:/[]?={}`, r)
	}) < 0 {
		return "attachment; filename=" + name
	}
	return mime.FormatMediaType("attachment", map[string]string{"filename": name})
}

var validStates = map[string]bool{tasks.StatePending: true, tasks.StateInProgress: true, tasks.StatePaused: true,
	tasks.StateCompleted: true, tasks.StateFailed: true, tasks.StateStopped: true}

func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "state", "caseId")
	if err != nil {
		return err
	}
	want := strings.ToLower(strings.TrimSpace(q.Get("state")))
	caseID := strings.TrimSpace(q.Get("caseId"))
	if want != "" && !validStates[want] {
		return bad("state=%q: accepted values are pending, in-progress, paused, completed, failed, stopped", want)
	}
	all, err := s.tasks.Tasks()
	if err != nil {
		return err
	}
	out := TasksResponse{Tasks: []TaskRow{}}
	id := who(r)
	for _, t := range all {
		if (want != "" && t.State != want) || (caseID != "" && t.CaseID != caseID) || !mayAccess(id, t) {
			continue
		}
		out.Tasks = append(out.Tasks, TaskRow{t.Key, t.Kind, t.State, s.tasks.Status(t).Progress, t.Port, t.Model + " " + t.Serial, t.CaseID})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// secret parameters never leave the request.
var secret = map[string]bool{"targetFolderPwd": true, "reportFolderPwd": true, "password": true, "token": true, "newPassword": true}

// params is a request's parameters as the audit trail keeps them: credentials removed, secrets
// stripped from mountOptions.
func params(q url.Values) map[string]string {
	out := map[string]string{}
	for k, v := range q {
		if secret[k] || len(v) == 0 {
			continue
		}
		out[k] = v[0]
		if k == "mountOptions" { // a password typed here is used for the mount, never kept
			out[k] = target.StripSecretOptions(v[0])
		}
	}
	return out
}
