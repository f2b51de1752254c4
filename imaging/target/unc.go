package target

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// UNC is a parsed share path: //server/share/sub/dir.
type UNC struct {
	Server string
	Share  string
	Dir    string // '/'-separated, no leading or trailing slash; "" is the share root
	Port   int    // from port=N in mountOptions; 445 otherwise
}

// ParseUNC splits a share path written with either separator. The port comes from mountOptions
// (port=N) because the API has no other place for it and the kernel client reads it there too.
func ParseUNC(folder, mountOptions string) (UNC, error) {
	f := strings.ReplaceAll(strings.TrimSpace(folder), `\`, "/")
	if !strings.HasPrefix(f, "//") {
		return UNC{}, fmt.Errorf("share path %q does not start with // or \\\\", folder)
	}
	var parts []string
	for _, p := range strings.Split(f[2:], "/") {
		if p != "" {
			if p == "." || p == ".." {
				return UNC{}, fmt.Errorf("share path %q contains %q", folder, p)
			}
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return UNC{}, fmt.Errorf("share path %q names no server", folder)
	}
	if len(parts) < 2 {
		return UNC{}, fmt.Errorf("share path %q names no share (expected //server/share/dir)", folder)
	}
	u := UNC{Server: parts[0], Share: parts[1], Dir: strings.Join(parts[2:], "/"), Port: 445}
	for _, o := range splitOptions(mountOptions) {
		k, v, _ := strings.Cut(o, "=")
		if strings.TrimSpace(k) == "port" {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n <= 0 || n > 65535 {
				return UNC{}, fmt.Errorf("mountOptions: port=%q is not a port number", v)
			}
			u.Port = n
		}
	}
	return u, nil
}

// Display is the user-facing path of name inside the folder, always with forward slashes.
func (u UNC) Display(name string) string {
	s := "//" + u.Server + "/" + u.Share
	if u.Dir != "" {
		s += "/" + u.Dir
	}
	if name != "" {
		s += "/" + strings.TrimPrefix(name, "/")
	}
	return s
}

// secretOptions are mount options whose value is a secret (or names a file of secrets): they are
// never stored, shown or passed on from the free-form mountOptions; the password has its own field.
var secretOptions = map[string]bool{"password": true, "pass": true, "password2": true, "pwd": true, "cred": true, "credentials": true}

func secretOption(o string) bool {
	k, _, _ := strings.Cut(o, "=")
	return secretOptions[strings.ToLower(strings.TrimSpace(k))]
}

// StripSecretOptions removes the secret options (password=, pass=, cred=, credentials= ...) from
// a mountOptions value, for storing and reporting it. A secret may itself hold commas, so the
// pieces after one that are not options of their own (no '=') go with it.
func StripSecretOptions(s string) string {
	var out []string
	inSecret := false
	for _, o := range splitOptions(s) {
		switch {
		case secretOption(o):
			inSecret = true
			continue
		case inSecret && !strings.Contains(o, "="):
			continue
		}
		inSecret = false
		out = append(out, o)
	}
	return strings.Join(out, ",")
}

func splitOptions(s string) []string {
	var out []string
	for _, o := range strings.Split(s, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// DNS lookup modes accepted for dnsLookup. The seed leaves the value list blank, so the appliance
// accepts the usual ones and documents each:
//   - "" / "auto" / "system": the system resolver (/etc/hosts, DNS as nsswitch says), IPv4 or IPv6.
//   - "ipv4": the system resolver, IPv4 addresses only.
//   - "ipv6": the system resolver, IPv6 addresses only.
//   - "none" / "ip": no lookup; the server must be written as an IP address.
var dnsModes = map[string]string{"": "ip", "auto": "ip", "system": "ip", "dns": "ip", "ipv4": "ip4", "ipv6": "ip6", "none": "", "ip": ""}

// ResolveServer turns the server name into one IP address according to dnsLookup.
func ResolveServer(ctxResolve func(network, host string) ([]net.IP, error), server, mode string) (string, error) {
	network, ok := dnsModes[strings.ToLower(strings.TrimSpace(mode))]
	if !ok {
		return "", fmt.Errorf("dnsLookup %q is not one of auto, system, dns, ipv4, ipv6, none", mode)
	}
	if ip := net.ParseIP(strings.Trim(server, "[]")); ip != nil {
		return ip.String(), nil
	}
	if network == "" {
		return "", fmt.Errorf("dnsLookup=%s: server %q must be an IP address", mode, server)
	}
	ips, err := ctxResolve(network, server)
	if err != nil || len(ips) == 0 {
		return "", fmt.Errorf("unknown host %q: cannot resolve the server name (%v)", server, err)
	}
	return ips[0].String(), nil
}

// KernelMountOptions is the option data of a cifs mount(2). The password is in Data only; String
// is the form for logs and errors.
type KernelMountOptions struct {
	Data     string
	password string
}

// String redacts the password.
func (k KernelMountOptions) String() string {
	if k.password == "" {
		return k.Data
	}
	var out []string
	for _, o := range strings.Split(k.Data, ",") {
		if strings.HasPrefix(o, "password=") {
			o = "password=***"
		}
		out = append(out, o)
	}
	return strings.Join(out, ",")
}

// BuildKernelOptions builds the cifs mount data: ip= (already resolved, the kernel does no DNS),
// username/domain/password, then the user's options (port=N among them) so experts can override.
func BuildKernelOptions(ip string, spec Spec) (KernelMountOptions, error) {
	if strings.ContainsAny(spec.Password, ",") {
		// The cifs option parser splits on ','; an escaped ",," exists but is rarely right in practice.
		spec.Password = strings.ReplaceAll(spec.Password, ",", ",,")
	}
	for _, s := range []string{spec.Login, spec.Domain} {
		if strings.ContainsAny(s, ",=") {
			return KernelMountOptions{}, fmt.Errorf("login or domain contains ',' or '='")
		}
	}
	opts := []string{"ip=" + ip}
	if spec.Login != "" {
		opts = append(opts, "username="+spec.Login)
	} else {
		opts = append(opts, "guest")
	}
	if spec.Domain != "" {
		opts = append(opts, "domain="+spec.Domain)
	}
	if spec.Password != "" {
		opts = append(opts, "password="+spec.Password)
	}
	// Passwords come only from the credential field, never from free-form options.
	opts = append(opts, splitOptions(StripSecretOptions(spec.MountOptions))...)
	return KernelMountOptions{Data: strings.Join(opts, ","), password: spec.Password}, nil
}
