//go:build !cgo || purego

package deflate

const engine = "go"

func newRaw(level Level) rawEncoder { return newGoRaw(level) }
