//go:build !race

package testenv

// Race reports whether the test binary was built with the race detector (go test -race), under
// which the corpus-heavy tests push a prefix of the corpus through instead of all of it.
const Race = false
