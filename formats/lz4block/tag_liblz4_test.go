//go:build !noliblz4

package lz4block

// noLibTag is set when the build asked for the pure-Go engine (-tags noliblz4).
const noLibTag = false
