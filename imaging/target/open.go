package target

import (
	"context"
	"fmt"
	"strings"
)

// Config is the appliance's side of target selection.
type Config struct {
	Roots []string // local folders a target may point into
}

// Open resolves a target folder as the API names it.
func Open(ctx context.Context, spec Spec, cfg Config) (Target, error) {
	f := strings.TrimSpace(spec.Folder)
	switch {
	case f == "":
		return nil, fmt.Errorf("target folder is empty")
	case strings.HasPrefix(f, "//") || strings.HasPrefix(f, `\\`):
		return nil, fmt.Errorf("CIFS targets are not supported yet")
	case strings.HasPrefix(f, "/"):
		return OpenLocal(f, cfg.Roots)
	}
	return nil, fmt.Errorf("target folder %q is neither a share (//server/share/dir) nor an absolute local path", spec.Folder)
}
