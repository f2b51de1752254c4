package target

import (
	"context"
	"fmt"
	"strings"
)

// Config is the appliance's side of target selection.
type Config struct {
	Roots []string // local folders a target may point into
	// Client picks the CIFS client: "auto" (default: kernel when /proc/filesystems lists cifs and we
	// are root, else user space), "kernel" or "smb".
	Client string
}

// Open resolves a target folder as the API names it.
func Open(ctx context.Context, spec Spec, cfg Config) (Target, error) {
	f := strings.TrimSpace(spec.Folder)
	switch {
	case f == "":
		return nil, fmt.Errorf("target folder is empty")
	case strings.HasPrefix(f, "//") || strings.HasPrefix(f, `\\`):
		switch strings.ToLower(cfg.Client) {
		case "", "auto":
			if kernelCIFSAvailable() {
				return OpenKernel(ctx, spec)
			}
			return OpenSMB(ctx, spec)
		case "kernel":
			return OpenKernel(ctx, spec)
		case "smb":
			return OpenSMB(ctx, spec)
		}
		return nil, fmt.Errorf("CIFS client %q is not one of auto, kernel, smb", cfg.Client)
	case strings.HasPrefix(f, "/"):
		return OpenLocal(f, cfg.Roots)
	}
	return nil, fmt.Errorf("target folder %q is neither a share (//server/share/dir) nor an absolute local path", spec.Folder)
}
