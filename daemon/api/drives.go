package api

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/evidenced/evidenced/daemon/tasks"
	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/board"
)

// canonicalPort finds a board port by name, case-insensitively.
func (s *Server) canonicalPort(name string) (hal.Port, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, bad("port name is empty")
	}
	for _, p := range s.board.Ports() {
		if strings.EqualFold(p.Name(), name) || strings.EqualFold(strings.ReplaceAll(name, " ", ""), p.Name()) {
			return p, nil
		}
	}
	return nil, notFound("unknown port %q: this board has %s", name, strings.Join(s.portNames(), ", "))
}

func (s *Server) portNames() []string {
	var out []string
	for _, p := range s.board.Ports() {
		out = append(out, p.Name())
	}
	return out
}

// driveID is a parsed drive identifier: a port, and the model and serial when given.
type driveID struct {
	port, model, serial string
}

// parseDriveID parses `PORT` or `PORT MODEL SERIAL`. The port may be written as check-task
// displays it ("SATA 1"): a word of letters followed by a number is one port name.
func parseDriveID(param, id string) (driveID, error) {
	fields := strings.Fields(id)
	if len(fields) == 0 {
		return driveID{}, bad("%s is required: a port (SATA4) or port, model and serial (SATA4 SanDisk SDSSDA120G 171108456213)", param)
	}
	if len(fields) >= 2 && isLetters(fields[0]) && isDigits(fields[1]) {
		fields = append([]string{fields[0] + fields[1]}, fields[2:]...)
	}
	if len(fields) == 2 {
		return driveID{}, bad("%s=%q: give the port alone, or the port, the model and the serial", param, id)
	}
	out := driveID{port: fields[0]}
	if len(fields) >= 3 {
		out.model, out.serial = strings.Join(fields[1:len(fields)-1], " "), fields[len(fields)-1]
	}
	return out, nil
}

func isLetters(s string) bool {
	return s != "" && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsLetter(r) }) < 0
}
func isDigits(s string) bool {
	return s != "" && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsDigit(r) }) < 0
}

// resolveDrive parses a drive identifier (`PORT` or `PORT MODEL SERIAL`) and finds the drive.
func (s *Server) resolveDrive(ctx context.Context, param, id string) (hal.Port, hal.Drive, error) {
	did, err := parseDriveID(param, id)
	if err != nil {
		return nil, nil, err
	}
	p, err := s.canonicalPort(did.port)
	if err != nil {
		return nil, nil, err
	}
	d := tasks.WaitDrive(ctx, p, 5*time.Second)
	if d == nil {
		return nil, nil, notFound("no drive detected on port %s", p.Name())
	}
	if did.serial != "" {
		model, serial := did.model, did.serial
		got := d.Identity()
		if got.Serial != serial || !modelMatches(got.Model, model) {
			return nil, nil, conflict("the drive on port %s is %s %s, not %s %s", p.Name(), got.Model, got.Serial, model, serial)
		}
	}
	return p, d, nil
}

// modelMatches accepts the full model or its trailing words (scripts often drop the vendor:
// "SDSSDA120G" for "SanDisk SDSSDA120G"), compared case-insensitively.
func modelMatches(full, given string) bool {
	full, given = strings.ToLower(strings.Join(strings.Fields(full), " ")), strings.ToLower(strings.Join(strings.Fields(given), " "))
	return given != "" && (full == given || strings.HasSuffix(full, " "+given))
}

func display(p hal.Port, d hal.Drive) string {
	id := d.Identity()
	return p.Name() + " " + id.Model + " " + id.Serial
}

// portUsed tells the idle power-off timer (if any) that a client is looking at a port.
func (s *Server) portUsed(port string) {
	if s.cfg.PortUsed != nil {
		s.cfg.PortUsed(port)
	}
}

func (s *Server) sourceDrives(w http.ResponseWriter, r *http.Request) error {
	if err := noParams(r); err != nil {
		return err
	}
	var srcPorts []hal.Port
	for _, p := range s.board.Ports() {
		if p.Mode() != hal.ModeSource {
			continue
		}
		srcPorts = append(srcPorts, p)
		s.portUsed(p.Name())
		if !p.Powered() {
			if err := p.PowerOn(r.Context()); err != nil {
				s.log.Warn("power on", "port", p.Name(), "err", err)
			}
		}
	}
	// Drives still spinning up get ScanWait in all, woken by the ports rather than a timer.
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ScanWait)
	defer cancel()
	for _, p := range srcPorts {
		if _, err := hal.WaitSettled(ctx, p); err != nil {
			break
		}
	}
	found := []string{}
	scanned := 0
	for _, p := range srcPorts {
		switch p.State() {
		case hal.StateReady:
			scanned++
			if d := p.Drive(); d != nil && s.tasks.BusyTask(p.Name()) == "" {
				found = append(found, display(p, d))
			}
		case hal.StateNotDetected:
			scanned++
		}
	}
	writeJSON(w, http.StatusOK, SourceDrivesResponse{ScannedSourcePorts: scanned, TotalSourcePorts: len(srcPorts), FoundSourceDevices: found})
	return nil
}

// portFromQuery reads the port of scan-port: the bare query key (`?sas8`) or `port=`; one port
// per call. Anything else is an unknown parameter.
func portFromQuery(rawQuery string) (string, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", bad("cannot parse the query: %v", err)
	}
	var ports []string
	for k, vs := range q {
		switch {
		case strings.EqualFold(k, "token"):
		case strings.EqualFold(k, "port"):
			ports = append(ports, vs...)
		case len(vs) == 1 && vs[0] == "":
			ports = append(ports, k)
		default:
			return "", bad("unknown parameter %q: /api/scan-port takes the port as the bare query (?SATA4) or port=SATA4 (and token)", k)
		}
	}
	switch len(ports) {
	case 0:
		return "", bad("name the port: /api/scan-port?SATA4 or /api/scan-port?port=SATA4")
	case 1:
		return ports[0], nil
	}
	slices.Sort(ports)
	return "", bad("one port per call: /api/scan-port was given %s", strings.Join(ports, ", "))
}

func (s *Server) scanPort(w http.ResponseWriter, r *http.Request) error {
	name, err := portFromQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	p, err := s.canonicalPort(name)
	if err != nil {
		return err
	}
	s.portUsed(p.Name())
	if !p.Powered() {
		if err := p.PowerOn(r.Context()); err != nil {
			return err
		}
	}
	out := ScanPortResponse{IsSource: p.Mode() == hal.ModeSource}
	state := p.State()
	switch state {
	case hal.StateOff, hal.StateIdentifying:
		out.State = "identifying"
	case hal.StateNotDetected:
		out.State = "not-detected"
	case hal.StateReady:
		out.State = "ready"
	}
	if d := p.Drive(); d != nil && state == hal.StateReady {
		id := d.Identity()
		out.Model, out.Serial = id.Model, id.Serial
		if s.tasks.BusyTask(p.Name()) != "" {
			out.State = "task-progress"
		}
		if c, ev, err := s.st.CaseByDrive(id.Model, id.Serial); err == nil {
			out.CaseID, out.EvidenceID = c.CaseID, ev.EvidenceID
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) ports(w http.ResponseWriter, r *http.Request) error {
	if err := noParams(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, PortsResponse{Ports: s.portList()})
	return nil
}

// portList describes every port of the board, in board order.
func (s *Server) portList() []PortInfo {
	out := []PortInfo{}
	for _, p := range s.board.Ports() {
		pi := PortInfo{Name: p.Name(), Bus: p.Bus(), Mode: string(p.Mode()), Powered: p.Powered(), State: string(p.State()), Task: s.tasks.BusyTask(p.Name())}
		if d := p.Drive(); d != nil && p.State() == hal.StateReady {
			id := d.Identity()
			pi.Drive = &DriveInfo{Model: id.Model, Serial: id.Serial, Size: id.Size, SectorSize: id.SectorSize, Bus: id.Bus}
		}
		out = append(out, pi)
	}
	return out
}

func (s *Server) setPortMode(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "port", "mode")
	if err != nil {
		return err
	}
	name, err := required(q, "port")
	if err != nil {
		return err
	}
	ms, err := required(q, "mode")
	if err != nil {
		return err
	}
	mode, err := hal.ParseMode(ms)
	if err != nil {
		return bad("mode=%q: accepted values are source or target", ms)
	}
	p, err := s.canonicalPort(name)
	if err != nil {
		return err
	}
	if k := s.tasks.BusyTask(p.Name()); k != "" {
		return conflict("port %s is busy with task %s; the mode changes only when it is idle", p.Name(), k)
	}
	if err := p.SetMode(mode); err != nil {
		return err
	}
	if err := s.st.SetPortMode(p.Name(), string(mode)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, PortModeResponse{Port: p.Name(), Mode: string(mode)})
	return nil
}

func (s *Server) simPlug(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "port", "path", "model", "serial", "readMBps")
	if err != nil {
		return err
	}
	var vals [4]string
	for i, n := range []string{"port", "path", "model", "serial"} {
		v, err := required(q, n)
		if err != nil {
			return err
		}
		vals[i] = v
	}
	p, err := s.canonicalPort(vals[0])
	if err != nil {
		return err
	}
	d := board.DriveDesc{Path: vals[1], Model: vals[2], Serial: vals[3]}
	if v := strings.TrimSpace(q.Get("readMBps")); v != "" {
		// A slow drive for demos and tests that need time to watch, pause and resume a task.
		mbps, err := strconv.ParseFloat(v, 64)
		if err != nil || mbps < 0 || math.IsInf(mbps, 0) || math.IsNaN(mbps) {
			return bad("readMBps=%q: a read speed in MB/s, 0 or more (0 = unthrottled)", v)
		}
		d.ReadMBps = mbps
	}
	if err := s.board.(Plugger).PlugDrive(p.Name(), d); err != nil {
		return bad("plug: %v", err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"port": p.Name(), "state": "plugged"})
	return nil
}

func (s *Server) simUnplug(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "port")
	if err != nil {
		return err
	}
	name, err := required(q, "port")
	if err != nil {
		return err
	}
	p, err := s.canonicalPort(name)
	if err != nil {
		return err
	}
	if err := s.board.(Plugger).Unplug(p.Name()); err != nil {
		return conflict("unplug: %v", err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"port": p.Name(), "state": "unplugged"})
	return nil
}
