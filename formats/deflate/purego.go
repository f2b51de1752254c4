//go:build !cgo || !isal

package deflate

const engine = "go"

func newRaw(level Level) rawEncoder { return newGoRaw(level) }
