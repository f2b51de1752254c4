package api

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/evidenced/evidenced/formats/digest"
	"github.com/evidenced/evidenced/formats/ewf"
	"github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/imaging/target"
)

// Parameters each endpoint knows, spelled as the TaskForce document (and CONTRACT.md) spell them.
// Names are matched without regard to case; `token` is known everywhere.
var (
	targetParams  = []string{"targetFolder", "targetFolderLogin", "targetFolderPwd", "targetFolderDomain", "mountOptions", "dnsLookup"}
	imageParams   = slices.Concat([]string{"source", "shared", "targetFile", "settings", "targetType", "saveReport", "verify", "retries", "hash", "e01Case", "e01Evid", "e01Desc", "e01Inv", "e01Notes", "e01Comp", "e01Compression", "e01Segment", "aff4Case", "aff4Evid", "aff4Desc", "aff4Inv", "aff4Comp", "aff4Hash"}, targetParams)
	logicalParams = slices.Concat([]string{"source", "shared", "targetFile", "settings", "targetType", "saveReport", "verify", "hash", "compression", "l01Case", "l01Evid", "l01Desc", "l01Inv", "l01Segment"}, targetParams)
	diagParams    = []string{"source", "shared", "reportFolder", "reportFolderLogin", "reportFolderPwd", "reportFolderDomain", "mountOptions", "dnsLookup"}
	// presetParams are what an imaging preset may set: the image's settings, not the drive, the
	// target or the case.
	presetParams = []string{"targetType", "saveReport", "verify", "retries", "hash", "e01Comp", "e01Compression", "e01Segment", "aff4Comp", "aff4Hash", "mountOptions", "dnsLookup"}
)

// MaxCaseField is the longest case field (e01Case, l01Inv, ...) accepted, in bytes of UTF-8:
// libewf's ewfinfo prints header values through a 512-byte buffer and fails on the whole header
// ("Unable to print header values") from 512 bytes on (measured with ewfinfo 20140813).
const MaxCaseField = 511

// query parses the URL query of an endpoint that knows the parameters named: each name is matched
// without regard to case and the result is keyed by the accepted spelling. An unknown parameter,
// or one given twice, is 400. '+' and %20 both decode to a space.
func query(r *http.Request, accepted ...string) (url.Values, error) {
	raw, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, bad("cannot parse the query: %v", err)
	}
	return canonical(r.URL.Path, raw, accepted)
}

func canonical(endpoint string, raw url.Values, accepted []string) (url.Values, error) {
	out := url.Values{}
	for k, vs := range raw {
		if strings.EqualFold(k, "token") {
			continue
		}
		i := slices.IndexFunc(accepted, func(a string) bool { return strings.EqualFold(a, k) })
		if i < 0 {
			if len(accepted) == 0 {
				return nil, bad("unknown parameter %q: %s takes no parameters (besides token)", k, endpoint)
			}
			return nil, bad("unknown parameter %q: %s accepts %s (and token)", k, endpoint, strings.Join(accepted, ", "))
		}
		name := accepted[i]
		if len(vs) > 1 || out.Has(name) {
			return nil, bad("parameter %s is given more than once", name)
		}
		out[name] = vs
	}
	return out, nil
}

// noParams refuses any parameter but token.
func noParams(r *http.Request) error {
	_, err := query(r)
	return err
}

func boolParam(q url.Values, name string, def bool) (bool, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, bad("%s=%q: accepted values are true or false", name, v)
}

func required(q url.Values, name string) (string, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return "", bad("%s is required", name)
	}
	return v, nil
}

// intParam reads a whole number from lo to hi; def when absent.
func intParam(q url.Values, name string, def, lo, hi int, what string) (int, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, bad("%s=%q: %s", name, v, what)
	}
	return n, nil
}

// validFileName checks targetFile: a plain file name without extension.
func validFileName(name string) error {
	if len(name) > 200 {
		return bad("targetFile is longer than 200 characters")
	}
	if name == "." || name == ".." || strings.ContainsAny(name, `/\:*?"<>|`) {
		return bad("targetFile=%q: a file name without folders or any of / \\ : * ? \" < > |", name)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return bad("targetFile contains control characters")
		}
	}
	return nil
}

// caseField checks a metadata value written into the image header: bounded, printable (a NUL
// would cut the value short in EWF, a tab or a line break would shift the header's columns).
func caseField(name, v string) (string, error) {
	if !utf8.ValidString(v) {
		return "", bad("%s is not valid UTF-8", name)
	}
	if len(v) > MaxCaseField {
		return "", bad("%s is %d bytes long in UTF-8; at most %d are accepted (EWF readers fail on longer header values)", name, len(v), MaxCaseField)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return "", bad("%s contains a control character (%U); case fields are one line of text", name, r)
		}
	}
	return strings.TrimSpace(v), nil
}

// hashList parses a hash choice: md5, sha1, md5+sha1, sha256, sha512 (or a comma list); "none"
// only where allowNone.
func hashList(q url.Values, param string, def, allowed []digest.Name, allowNone bool) ([]digest.Name, error) {
	v := strings.TrimSpace(q.Get(param))
	if v == "" {
		return def, nil
	}
	parts := make([]string, 0, len(allowed)+1)
	for _, n := range allowed {
		parts = append(parts, n.Lower())
	}
	if len(allowed) > 1 { // md5, sha1, md5+sha1, ...
		parts = slices.Insert(parts, 2, parts[0]+"+"+parts[1])
	}
	accepted := strings.Join(parts, ", ")
	if allowNone {
		accepted += ", none"
		if strings.EqualFold(v, "none") {
			return nil, nil
		}
	}
	var out []digest.Name
	for _, h := range strings.FieldsFunc(v, func(r rune) bool { return r == '+' || r == ',' || r == ' ' }) {
		n, err := digest.Parse(h)
		if err != nil || !slices.Contains(allowed, n) {
			return nil, bad("%s=%q: accepted values are %s", param, v, accepted)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// targetOptions reads a target (or report) folder's stored part: everything but the password.
func targetOptions(q url.Values, prefix string) (options.Target, error) {
	t := options.Target{
		Folder: strings.TrimSpace(q.Get(prefix + "Folder")), Login: q.Get(prefix + "FolderLogin"),
		Domain: q.Get(prefix + "FolderDomain"), MountOptions: target.StripSecretOptions(q.Get("mountOptions")), DNSLookup: strings.TrimSpace(q.Get("dnsLookup")),
	}
	if err := target.CheckDNSLookup(t.DNSLookup); err != nil {
		return t, bad("%v", err)
	}
	return t, nil
}

// targetSpec is the target folder as the request gives it, with its password and mount options
// as typed, to open it (never stored).
func targetSpec(t options.Target, q url.Values, prefix string) target.Spec {
	return target.Spec{Folder: t.Folder, Login: t.Login, Password: q.Get(prefix + "FolderPwd"), Domain: t.Domain,
		MountOptions: q.Get("mountOptions"), DNSLookup: t.DNSLookup}
}

// caseOptions reads the case fields of a format (prefix e01, aff4 or l01).
func caseOptions(q url.Values, prefix string, notes bool) (options.Case, error) {
	var c options.Case
	fields := []struct {
		suffix string
		dst    *string
	}{{"Case", &c.Number}, {"Evid", &c.Evidence}, {"Desc", &c.Description}, {"Inv", &c.Examiner}}
	if notes {
		fields = append(fields, struct {
			suffix string
			dst    *string
		}{"Notes", &c.Notes})
	}
	for _, f := range fields {
		v, err := caseField(prefix+f.suffix, q.Get(prefix+f.suffix))
		if err != nil {
			return c, err
		}
		*f.dst = v
	}
	return c, nil
}

// commonOptions reads what physical and logical imaging share.
func commonOptions(q url.Values, o *options.Task) error {
	var err error
	if _, err = required(q, "targetFolder"); err != nil {
		return err
	}
	if o.Target, err = targetOptions(q, "target"); err != nil {
		return err
	}
	if tf := strings.TrimSpace(q.Get("targetFile")); tf != "" {
		if err := validFileName(tf); err != nil {
			return err
		}
		o.TargetFile = tf
	}
	if o.SaveReport, err = boolParam(q, "saveReport", true); err != nil {
		return err
	}
	o.Verify, err = boolParam(q, "verify", true)
	return err
}

// startOptions reads the format (def when absent, one of allowed) and what physical and logical
// imaging share, onto the format's defaults.
func startOptions(q url.Values, def options.Format, allowed []options.Format, what string) (options.Task, error) {
	f := def
	if typ := strings.ToLower(strings.TrimSpace(q.Get("targetType"))); typ != "" {
		f = options.Format(typ)
	}
	if !slices.Contains(allowed, f) {
		return options.Task{}, bad("targetType=%q: accepted values %s", q.Get("targetType"), what)
	}
	o := options.Default(f)
	o.Settings = strings.TrimSpace(q.Get("settings"))
	err := commonOptions(q, &o)
	return o, err
}

// parseImageOptions reads start-image's parameters (a preset already merged in).
func parseImageOptions(q url.Values) (options.Task, error) {
	o, err := startOptions(q, options.E01, options.PhysicalFormats, "are "+options.List(options.PhysicalFormats))
	if err != nil {
		return o, err
	}
	f := o.Format
	if o.Retries, err = intParam(q, "retries", options.DefaultRetries, 0, 100, "a whole number from 0 to 100"); err != nil {
		return o, err
	}
	// The case parameters of the other format are checked too (they must not hide garbage) but
	// only the image's own are written; raw images carry none and take e01's into the report.
	e01Case, err := caseOptions(q, "e01", true)
	if err != nil {
		return o, err
	}
	aff4Case, err := caseOptions(q, "aff4", false)
	if err != nil {
		return o, err
	}
	o.Case = e01Case
	if f == options.AFF4 {
		o.Case = aff4Case
	}
	comp, err := boolParam(q, "e01Comp", true)
	if err != nil {
		return o, err
	}
	o.E01.Compression = "fast"
	if !comp {
		o.E01.Compression = "none"
	}
	if v := strings.TrimSpace(q.Get("e01Compression")); v != "" {
		c, err := ewf.ParseCompression(v)
		if err != nil {
			return o, bad("e01Compression=%q: accepted values are none, empty-block, fast, best", v)
		}
		o.E01.Compression = c.String()
	}
	if o.E01.SegmentGB, err = intParam(q, "e01Segment", 0, 0, 1<<20, "segment size in GB, a whole number, at least 1 (0 = one file)"); err != nil {
		return o, err
	}
	if v := strings.ToLower(strings.TrimSpace(q.Get("aff4Comp"))); v != "" {
		switch v {
		case "lz4", "snappy", "deflate":
		case "not compressed", "none", "not-compressed", "stored":
			v = "none"
		default:
			return o, bad("aff4Comp=%q: accepted values are lz4, snappy, deflate, not compressed", q.Get("aff4Comp"))
		}
		o.AFF4.Compression = v
	}
	all := digest.All()
	aff4Hashes, err := hashList(q, "aff4Hash", o.Hashes, all, false)
	if err != nil {
		return o, err
	}
	if f == options.AFF4 {
		o.Hashes = aff4Hashes
		if q.Has("hash") && !q.Has("aff4Hash") {
			o.Hashes, err = hashList(q, "hash", o.Hashes, all, false)
		}
		return o, err
	}
	allowed := all
	if f == options.E01 {
		// EWF's hash and digest sections hold MD5 and SHA1 only; a SHA-256 computed beside them
		// would be in no place an EWF reader looks, so the combination is refused.
		allowed = []digest.Name{digest.MD5, digest.SHA1}
	}
	if o.Hashes, err = hashList(q, "hash", o.Hashes, allowed, false); err != nil {
		if f == options.E01 {
			return o, bad("hash=%q: an E01 image stores MD5 and SHA1 only (accepted: md5, sha1, md5+sha1); use targetType=aff4 or raw for SHA-256 or SHA-512", q.Get("hash"))
		}
		return o, err
	}
	return o, nil
}

// parseLogicalOptions reads start-logical's parameters (the filter preset is the caller's).
func parseLogicalOptions(q url.Values) (options.Task, error) {
	o, err := startOptions(q, options.L01, options.LogicalFormats, "for logical imaging are L01, zip")
	if err != nil {
		return o, err
	}
	f := o.Format
	if o.Case, err = caseOptions(q, "l01", false); err != nil {
		return o, err
	}
	compress, err := boolParam(q, "compression", true)
	if err != nil {
		return o, err
	}
	o.L01.Compress, o.Zip.Compress = compress, compress
	if f == options.Zip {
		o.L01 = options.L01Options{}
	} else {
		o.Zip = options.ZipOptions{}
	}
	if o.L01.SegmentGB, err = intParam(q, "l01Segment", 0, 0, 1<<20, "segment size in GB, a whole number, at least 1 (0 = one file)"); err != nil {
		return o, err
	}
	if f == options.Zip && o.L01.SegmentGB != 0 {
		return o, bad("l01Segment applies to targetType=l01 only; a zip is one file")
	}
	o.Hashes, err = hashList(q, "hash", o.Hashes, []digest.Name{digest.MD5, digest.SHA1}, true)
	return o, err
}
