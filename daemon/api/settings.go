package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/evidenced/evidenced/imaging/filter"
	"github.com/evidenced/evidenced/store"
)

// maxPresetBody bounds a posted preset: a filter is a few hundred bytes.
const maxPresetBody = 64 << 10

// settings serves the logical imaging filter presets ("settings" in start-logical):
// GET lists them (or one, with ?name=), POST stores one (JSON body, created or replaced),
// DELETE ?name= removes one.
func (s *Server) settings(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodPost:
		return s.postSetting(w, r)
	case http.MethodDelete:
		name, err := required(query(r), "name")
		if err != nil {
			return err
		}
		if err := s.st.DeletePreset(name); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no filter preset named %q: %w", name, store.ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("delete preset: %w", err)
		}
		writeJSON(w, http.StatusOK, map[string]string{"deleted": name})
		return nil
	}
	if name := strings.TrimSpace(query(r).Get("name")); name != "" {
		var f filter.Filter
		if err := s.st.Preset(name, &f); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no filter preset named %q: %w", name, store.ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("read preset: %w", err)
		}
		writeJSON(w, http.StatusOK, f)
		return nil
	}
	names, err := s.st.PresetNames()
	if err != nil {
		return fmt.Errorf("list presets: %w", err)
	}
	out := make([]filter.Filter, 0, len(names))
	for _, n := range names {
		var f filter.Filter
		if err := s.st.Preset(n, &f); err != nil {
			return fmt.Errorf("read preset %q: %w", n, err)
		}
		out = append(out, f)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) postSetting(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPresetBody+1))
	if err != nil {
		return bad("reading the request body: %v", err)
	}
	if len(body) > maxPresetBody {
		return bad("the preset is larger than %d bytes", maxPresetBody)
	}
	f, err := filter.Parse(body)
	if err != nil {
		return bad("%v", err)
	}
	var old filter.Filter
	code := http.StatusCreated
	if err := s.st.Preset(f.Name, &old); err == nil {
		code = http.StatusOK
	}
	if err := s.st.PutPreset(f.Name, f); err != nil {
		return fmt.Errorf("store preset: %w", err)
	}
	s.log.Info("filter preset saved", "name", f.Name)
	writeJSON(w, code, f)
	return nil
}
