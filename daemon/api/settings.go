package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/evidenced/evidenced/imaging/filter"
	"github.com/evidenced/evidenced/internal/errkind"
	"github.com/evidenced/evidenced/store"
)

// maxPresetBody bounds a posted preset: a filter is a few hundred bytes.
const maxPresetBody = 64 << 10

// Kinds of saved settings.
const (
	presetImaging = "imaging" // start-image: image parameters applied under the request's own
	presetLogical = "logical" // start-logical: a file filter
)

// preset is a saved setting: an imaging preset (parameters by their API names) or a logical
// imaging filter. Logical presets are stored as the bare filter, as before kinds existed.
type preset struct {
	Name   string
	Kind   string
	Params map[string]string // imaging
	Filter *filter.Filter    // logical
}

// imagingPreset is the stored and posted form of an imaging preset.
type imagingPreset struct {
	Name   string            `json:"name"`
	Kind   string            `json:"kind"`
	Params map[string]string `json:"params"`
}

// decodePreset reads a preset as posted or stored: {"kind": "imaging", "name", "params"}, or a
// filter (with "kind": "logical" or no kind).
func decodePreset(data []byte) (preset, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return preset{}, fmt.Errorf("preset: invalid JSON: %v", err)
	}
	var kind string
	if k, ok := probe["kind"]; ok {
		if err := json.Unmarshal(k, &kind); err != nil {
			return preset{}, errors.New("preset: kind is imaging or logical")
		}
		delete(probe, "kind")
	}
	switch strings.ToLower(kind) {
	case presetImaging:
		var ip imagingPreset
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ip); err != nil {
			return preset{}, fmt.Errorf("imaging preset: %v", err)
		}
		if strings.TrimSpace(ip.Name) == "" {
			return preset{}, errors.New("imaging preset: name is required")
		}
		q := url.Values{}
		for k, v := range ip.Params {
			q.Set(k, v)
		}
		q, err := canonical("an imaging preset", q, presetParams)
		if err != nil {
			return preset{}, err
		}
		// The values are checked now, as a request would check them.
		check := url.Values{"targetFolder": {"/"}}
		params := map[string]string{}
		for k := range q {
			check.Set(k, q.Get(k))
			params[k] = q.Get(k)
		}
		if _, err := parseImageOptions(check); err != nil {
			return preset{}, err
		}
		return preset{Name: ip.Name, Kind: presetImaging, Params: params}, nil
	case "", presetLogical:
		rest, err := json.Marshal(probe)
		if err != nil {
			return preset{}, err
		}
		f, err := filter.Parse(rest)
		if err != nil {
			return preset{}, err
		}
		return preset{Name: f.Name, Kind: presetLogical, Filter: &f}, nil
	}
	return preset{}, fmt.Errorf("preset: kind=%q: accepted values are imaging, logical", kind)
}

// view is a preset as GET /api/settings shows it: the filter's fields or the imaging preset's,
// with the kind.
func (p preset) view() any {
	if p.Kind == presetImaging {
		return imagingPreset{Name: p.Name, Kind: p.Kind, Params: p.Params}
	}
	b, _ := json.Marshal(p.Filter)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	m["kind"] = presetLogical
	return m
}

func (p preset) stored() any {
	if p.Kind == presetImaging {
		return imagingPreset{Name: p.Name, Kind: p.Kind, Params: p.Params}
	}
	return p.Filter
}

// loadPreset reads a stored preset by name.
func (s *Server) loadPreset(name string) (preset, error) {
	var raw json.RawMessage
	if err := s.st.Preset(name, &raw); err != nil {
		return preset{}, err
	}
	p, err := decodePreset(raw)
	if err != nil {
		return preset{}, fmt.Errorf("stored preset %q: %w", name, err)
	}
	return p, nil
}

// preset finds the preset a start request names; an unknown name, or one of the other kind, is
// 400 listing the presets of that kind that exist.
func (s *Server) preset(name, kind string) (preset, error) {
	p, err := s.loadPreset(name)
	if err == nil && p.Kind == kind {
		return p, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return preset{}, err
	}
	names, err := s.presetNames(kind)
	if err != nil {
		return preset{}, err
	}
	// A name that differs only in case is the same preset when no other one does.
	var fold []string
	for _, n := range names {
		if strings.EqualFold(n, name) {
			fold = append(fold, n)
		}
	}
	if len(fold) == 1 {
		return s.loadPreset(fold[0])
	}
	what := map[string]string{presetImaging: "imaging preset", presetLogical: "filter preset"}[kind]
	have := "there are none (POST /api/settings saves one)"
	if len(names) > 0 {
		have = "saved: " + strings.Join(names, ", ")
	}
	return preset{}, bad("settings=%q: no such %s; %s", name, what, have)
}

func (s *Server) presetNames(kind string) ([]string, error) {
	all, err := s.st.PresetNames()
	if err != nil {
		return nil, fmt.Errorf("list presets: %w", err)
	}
	var out []string
	for _, n := range all {
		p, err := s.loadPreset(n)
		if err != nil {
			return nil, err
		}
		if kind == "" || p.Kind == kind {
			out = append(out, n)
		}
	}
	return out, nil
}

// settings serves the saved settings ("settings" in start-image and start-logical): GET lists
// them (or one, with ?name=; ?kind= filters), POST stores one (JSON body, created or replaced),
// DELETE ?name= removes one.
func (s *Server) settings(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "name", "kind")
	if err != nil {
		return err
	}
	switch r.Method {
	case http.MethodPost:
		return s.postSetting(w, r)
	case http.MethodDelete:
		name, err := required(q, "name")
		if err != nil {
			return err
		}
		if err := s.st.DeletePreset(name); errors.Is(err, store.ErrNotFound) {
			return errkind.New(errkind.NotFound, "no preset named %q", name)
		} else if err != nil {
			return fmt.Errorf("delete preset: %w", err)
		}
		writeJSON(w, http.StatusOK, map[string]string{"deleted": name})
		return nil
	}
	if name := strings.TrimSpace(q.Get("name")); name != "" {
		p, err := s.loadPreset(name)
		if errors.Is(err, store.ErrNotFound) {
			return errkind.New(errkind.NotFound, "no preset named %q", name)
		} else if err != nil {
			return fmt.Errorf("read preset: %w", err)
		}
		writeJSON(w, http.StatusOK, p.view())
		return nil
	}
	kind := strings.ToLower(strings.TrimSpace(q.Get("kind")))
	if kind != "" && !slices.Contains([]string{presetImaging, presetLogical}, kind) {
		return bad("kind=%q: accepted values are imaging, logical", q.Get("kind"))
	}
	names, err := s.presetNames(kind)
	if err != nil {
		return err
	}
	out := make([]any, 0, len(names))
	for _, n := range names {
		p, err := s.loadPreset(n)
		if err != nil {
			return err
		}
		out = append(out, p.view())
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
	p, err := decodePreset(body)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return err
		}
		return bad("%v", err)
	}
	code := http.StatusCreated
	if _, err := s.loadPreset(p.Name); err == nil {
		code = http.StatusOK
	}
	if err := s.st.PutPreset(p.Name, p.stored()); err != nil {
		return fmt.Errorf("store preset: %w", err)
	}
	s.log.Info("preset saved", "name", p.Name, "kind", p.Kind)
	writeJSON(w, code, p.view())
	return nil
}
