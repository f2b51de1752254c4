package api

// The answers of the API as Go types: what CONTRACT.md documents, field for field. Every field
// is always sent (no omitempty on documented fields): scripts index them without checking.

// SourceDrivesResponse is the answer of /api/source-drives.
type SourceDrivesResponse struct {
	ScannedSourcePorts int      `json:"scannedSourcePorts"`
	TotalSourcePorts   int      `json:"totalSourcePorts"`
	FoundSourceDevices []string `json:"foundSourceDevices"`
}

// ScanPortResponse is the answer of /api/scan-port. Model and Serial are empty until a drive is
// known, CaseID and EvidenceID when the drive is not linked to a case.
type ScanPortResponse struct {
	State      string `json:"state"` // identifying, ready, not-detected, task-progress
	IsSource   bool   `json:"isSource"`
	Model      string `json:"model"`
	Serial     string `json:"serial"`
	CaseID     string `json:"caseId"`
	EvidenceID string `json:"evidenceId"`
}

// CheckTaskResponse is the answer of /api/check-task: the document's eleven fields, then ours.
type CheckTaskResponse struct {
	Task           string            `json:"task"`
	TaskStep       string            `json:"taskStep"`
	Source         string            `json:"source"`
	Port           string            `json:"port"` // "SATA 4", as the document writes it
	State          string            `json:"state"`
	Message        string            `json:"message"`  // "completed", the reason of a failure, or empty
	Progress       string            `json:"progress"` // whole task, never decreasing
	CompletionDate string            `json:"completionDate"`
	Target         string            `json:"target"`
	Report         string            `json:"report"`
	Hashes         map[string]string `json:"hashes"` // empty until the task has ended

	TaskKey      string `json:"taskKey"`
	StepProgress string `json:"stepProgress"` // the current step's percent
	BytesDone    int64  `json:"bytesDone"`    // of the current step
	BytesTotal   int64  `json:"bytesTotal"`
	// Details add to Message: unreadable sectors, file errors, the verification.
	Details           string  `json:"details"`
	Verified          bool    `json:"verified"`
	UnreadableSectors int64   `json:"unreadableSectors"`
	MBps              float64 `json:"mbps,omitempty"` // while running
	ETA               *int    `json:"eta,omitempty"`  // seconds left in the current step, while running
}

// TaskRow is one task of /api/tasks.
type TaskRow struct {
	TaskKey  string `json:"taskKey"`
	Task     string `json:"task"`
	State    string `json:"state"`
	Progress string `json:"progress"`
	Port     string `json:"port"`
	Source   string `json:"source"`
	CaseID   string `json:"caseId"`
}

// TasksResponse is the answer of /api/tasks.
type TasksResponse struct {
	Tasks []TaskRow `json:"tasks"`
}

// StopTaskResponse is the answer of /api/stop-task.
type StopTaskResponse struct {
	State string `json:"state"`
}

// ResumeTaskResponse is the answer of /api/resume-task.
type ResumeTaskResponse struct {
	State   string `json:"state"`
	TaskKey string `json:"taskKey"`
}

// PortInfo is one port of /api/ports.
type PortInfo struct {
	Name    string     `json:"name"`
	Bus     string     `json:"bus"`
	Mode    string     `json:"mode"`
	Powered bool       `json:"powered"`
	State   string     `json:"state"`
	Drive   *DriveInfo `json:"drive,omitempty"` // when a drive is identified
	Task    string     `json:"busyTask,omitempty"`
}

// DriveInfo is the drive of a PortInfo.
type DriveInfo struct {
	Model      string `json:"model"`
	Serial     string `json:"serial"`
	Size       int64  `json:"size"`
	SectorSize int    `json:"sectorSize"`
	Bus        string `json:"bus"`
}

// PortsResponse is the answer of /api/ports.
type PortsResponse struct {
	Ports []PortInfo `json:"ports"`
}

// PortModeResponse is the answer of /api/set-port-mode.
type PortModeResponse struct {
	Port string `json:"port"`
	Mode string `json:"mode"`
}

// ErrorResponse is every error's body.
type ErrorResponse struct {
	Error string `json:"error"`
}
