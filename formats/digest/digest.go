// Package digest is the one vocabulary for the hashes evidence is verified with: the names (one
// spelling, parsed one way), a new hash for a name, and saving and restoring a running hash's
// state across a pause. The API, the task options, the pipeline and every format use it.
package digest

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"fmt"
	"hash"
	"slices"
	"strings"
)

// Name is a hash algorithm in its one spelling: upper case, no dash. Task records store it as
// this string.
type Name string

// The hashes evidence is hashed with.
const (
	MD5    Name = "MD5"
	SHA1   Name = "SHA1"
	SHA256 Name = "SHA256"
	SHA512 Name = "SHA512"
)

// all is every name, in the order lists, manifests and messages show them.
var all = [...]Name{MD5, SHA1, SHA256, SHA512}

// All returns every name, in the order lists, manifests and messages show them.
func All() []Name { return slices.Clone(all[:]) }

// Parse reads a name in any case ("md5", "Sha256"), surrounding space ignored: the one casing
// rule of the API, the CLI, AFF4 datatypes and zip manifests.
func Parse(s string) (Name, error) {
	n := Name(strings.ToUpper(strings.TrimSpace(s)))
	if !slices.Contains(all[:], n) {
		return "", fmt.Errorf("unknown hash %q (accepted: md5, sha1, sha256, sha512)", s)
	}
	return n, nil
}

// Lower is the name in lower case, as manifests and the API's parameter values write it.
func (n Name) Lower() string { return strings.ToLower(string(n)) }

// New returns a new hash of algorithm n.
func New(n Name) (hash.Hash, error) {
	switch n {
	case MD5:
		return md5.New(), nil
	case SHA1:
		return sha1.New(), nil
	case SHA256:
		return sha256.New(), nil
	case SHA512:
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unknown hash %q (accepted: md5, sha1, sha256, sha512)", string(n))
}

// Compare orders two hash names as All lists them (for slices.SortFunc over the string keys of
// a task's hash map); a name this package does not know comes after the known ones, by spelling.
func Compare(a, b string) int {
	rank := func(s string) int {
		if i := slices.Index(all[:], Name(s)); i >= 0 {
			return i
		}
		return len(all)
	}
	if c := rank(a) - rank(b); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// Order sorts names into All's order and drops repeats.
func Order(names []Name) []Name {
	var out []Name
	for _, n := range all {
		if slices.Contains(names, n) {
			out = append(out, n)
		}
	}
	return out
}

// SaveState returns the running state of h, one of New's hashes, to continue it after a pause.
func SaveState(h hash.Hash) ([]byte, error) {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return nil, fmt.Errorf("hash %T cannot save its state", h)
	}
	st, err := m.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("save hash state: %w", err)
	}
	return st, nil
}

// RestoreState returns a hash of algorithm n continuing from a state SaveState returned.
func RestoreState(n Name, state []byte) (hash.Hash, error) {
	h, err := New(n)
	if err != nil {
		return nil, err
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("restore %s state: %w", n, err)
	}
	return h, nil
}

// Piece is the most Write hands a hash in one call. crypto/md5 and crypto/sha1 hash a Write in one
// assembly call, and the garbage collector cannot stop a goroutine inside one: each collection
// spun (signals, yields) until a megabyte-sized Write returned, 0.58 CPU-seconds of a 12 s L01
// task. A 64 KiB piece is about 0.1 ms of MD5.
const Piece = 64 << 10

// Write writes p to h in pieces of at most Piece bytes. Hashes never return an error.
func Write(h hash.Hash, p []byte) {
	for len(p) > Piece {
		h.Write(p[:Piece])
		p = p[Piece:]
	}
	h.Write(p)
}
