package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/store"
)

// SettingAllowNonUniqueCaseNames is the appliance setting that lets two cases share an id.
const SettingAllowNonUniqueCaseNames = "allowNonUniqueCaseNames"

func (s *Server) allowNonUnique() (bool, error) {
	var allow bool
	if err := s.st.Setting(SettingAllowNonUniqueCaseNames, &allow); err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("read setting %s: %w", SettingAllowNonUniqueCaseNames, err)
	}
	return allow, nil
}

// ApplianceSettings is the answer of /api/appliance-settings.
type ApplianceSettings struct {
	AllowNonUniqueCaseNames bool `json:"allowNonUniqueCaseNames"`
}

// applianceSettings shows the appliance's settings; given as parameters, it sets them first.
func (s *Server) applianceSettings(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, SettingAllowNonUniqueCaseNames)
	if err != nil {
		return err
	}
	if q.Has(SettingAllowNonUniqueCaseNames) {
		v, err := boolParam(q, SettingAllowNonUniqueCaseNames, false)
		if err != nil {
			return err
		}
		if strings.TrimSpace(q.Get(SettingAllowNonUniqueCaseNames)) == "" {
			return bad("%s=: accepted values are true or false", SettingAllowNonUniqueCaseNames)
		}
		if err := s.st.PutSetting(SettingAllowNonUniqueCaseNames, v); err != nil {
			return fmt.Errorf("store setting: %w", err)
		}
		s.log.Info("appliance setting changed", SettingAllowNonUniqueCaseNames, v)
	}
	allow, err := s.allowNonUnique()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ApplianceSettings{AllowNonUniqueCaseNames: allow})
	return nil
}

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
	q, err := query(r, "source", "model", "serial", "caseId", "caseExaminer", "caseDescription", "caseLocation",
		"caseOrganization", "evidenceId", "evidenceExaminer", "move")
	if err != nil {
		return err
	}
	var (
		p hal.Port
		d hal.Drive
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
	move, err := boolParam(q, "move", false)
	if err != nil {
		return err
	}
	caseID := strings.TrimSpace(q.Get("caseId")) // "": the store generates one that is free
	evID := strings.TrimSpace(q.Get("evidenceId"))
	if evID == "" {
		evID = id.Model + " " + id.Serial
	}
	c := &store.Case{
		CaseID: caseID, CaseExaminer: q.Get("caseExaminer"), CaseDescription: q.Get("caseDescription"),
		CaseLocation: q.Get("caseLocation"), CaseOrganization: q.Get("caseOrganization"),
		Evidence: []store.Evidence{{EvidenceID: evID, EvidenceExaminer: q.Get("evidenceExaminer"), Model: id.Model, Serial: id.Serial}},
	}
	allow, err := s.allowNonUnique()
	if err != nil {
		return err
	}
	if err := s.st.CreateCase(c, store.CaseOptions{Unique: !allow, Move: move}); err != nil {
		var linked *store.LinkedError
		switch {
		case errors.As(err, &linked):
			return conflict("%v; a drive is evidence in one case at a time: add move=true to move it to the new case", linked)
		case errors.Is(err, store.ErrExists):
			return conflict("case id %q is taken (the appliance setting allowNonUniqueCaseNames is off: /api/appliance-settings)", caseID)
		}
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) editCase(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "caseId", "caseExaminer", "caseDescription", "caseLocation", "caseOrganization", "evidenceId", "evidenceExaminer")
	if err != nil {
		return err
	}
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
	writeJSON(w, http.StatusOK, c)
	return nil
}

// listCases answers every case, newest first (GET /api/cases; the dashboard's case list and filter).
func (s *Server) listCases(w http.ResponseWriter, r *http.Request) error {
	if err := noParams(r); err != nil {
		return err
	}
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
