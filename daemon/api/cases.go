package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/store"
)

// SettingAllowNonUniqueCaseNames is the appliance setting that lets two cases share an id.
const SettingAllowNonUniqueCaseNames = "allowNonUniqueCaseNames"

// findDriveByModelSerial looks for an identified drive anywhere on the board.
func (s *Server) findDriveByModelSerial(model, serial string) (hal.Port, hal.Drive) {
	for _, p := range s.board.Ports() {
		if d := p.Drive(); d != nil && p.State() == hal.StateReady {
			id := d.Identity()
			if id.Serial == serial && modelMatches(id.Model, model) {
				return p, d
			}
		}
	}
	return nil, nil
}

func (s *Server) createCase(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	var (
		p   hal.Port
		d   hal.Drive
		err error
	)
	if src := strings.TrimSpace(q.Get("source")); src != "" {
		if p, d, err = s.resolveDrive(r.Context(), "source", src); err != nil {
			return err
		}
	} else {
		model, serial := strings.TrimSpace(q.Get("model")), strings.TrimSpace(q.Get("serial"))
		if model == "" || serial == "" {
			return bad("name the drive: source=PORT MODEL SERIAL, or model= and serial=")
		}
		if p, d = s.findDriveByModelSerial(model, serial); d == nil {
			return notFound("no identified drive %s %s on any port; scan the port first", model, serial)
		}
	}
	if k := s.tasks.BusyTask(p.Name()); k != "" {
		return conflict("the drive on port %s is busy with task %s", p.Name(), k)
	}
	id := d.Identity()
	caseID := strings.TrimSpace(q.Get("caseId"))
	if caseID == "" {
		caseID = "CASE-" + time.Now().Format("20060102-150405")
	}
	evID := strings.TrimSpace(q.Get("evidenceId"))
	if evID == "" {
		evID = id.Model + " " + id.Serial
	}
	c := &store.Case{
		CaseID: caseID, CaseExaminer: q.Get("caseExaminer"), CaseDescription: q.Get("caseDescription"),
		CaseLocation: q.Get("caseLocation"), CaseOrganization: q.Get("caseOrganization"),
		Evidence: []store.Evidence{{EvidenceID: evID, EvidenceExaminer: q.Get("evidenceExaminer"), Model: id.Model, Serial: id.Serial}},
	}
	var allow bool
	if err := s.st.Setting(SettingAllowNonUniqueCaseNames, &allow); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := s.st.CreateCase(c, !allow); err != nil {
		if errors.Is(err, store.ErrExists) {
			return conflict("case id %q is taken (the appliance setting allowNonUniqueCaseNames is off)", caseID)
		}
		return err
	}
	_ = s.st.Audit(store.AuditEntry{Time: time.Now(), Action: "create-case", Detail: caseID})
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) editCase(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	caseID, err := required(q, "caseId")
	if err != nil {
		return err
	}
	evID := strings.TrimSpace(q.Get("evidenceId"))
	_, hasEvEx := q["evidenceExaminer"]
	if evID != "" && !hasEvEx {
		return bad("evidenceId names the evidence whose examiner changes: give evidenceExaminer too")
	}
	if hasEvEx && evID == "" {
		return bad("evidenceExaminer needs evidenceId to name the evidence")
	}
	c, err := s.st.UpdateCase(caseID, func(c *store.Case) error {
		set := func(dst *string, name string) {
			if v, ok := q[name]; ok {
				*dst = v[0]
			}
		}
		set(&c.CaseExaminer, "caseExaminer")
		set(&c.CaseDescription, "caseDescription")
		set(&c.CaseLocation, "caseLocation")
		set(&c.CaseOrganization, "caseOrganization")
		if evID != "" {
			n := 0
			for i := range c.Evidence {
				if c.Evidence[i].EvidenceID == evID {
					c.Evidence[i].EvidenceExaminer = q.Get("evidenceExaminer")
					n++
				}
			}
			if n == 0 {
				return notFound("case %s has no evidence %q", caseID, evID)
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no case with caseId %q", caseID)
	}
	if err != nil {
		return err
	}
	_ = s.st.Audit(store.AuditEntry{Time: time.Now(), Action: "edit-case", Detail: caseID})
	writeJSON(w, http.StatusOK, c)
	return nil
}

// listCases answers every case, newest first (GET /api/cases; the dashboard's case list and filter).
func (s *Server) listCases(w http.ResponseWriter, r *http.Request) error {
	all, err := s.st.Cases()
	if err != nil {
		return fmt.Errorf("list cases: %w", err)
	}
	if all == nil {
		all = []*store.Case{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"cases": all})
	return nil
}
