//go:build !cgo || noisal

package deflate

const engine = "go"

func newRaw(level Level) rawEncoder { return newGoRaw(level) }
