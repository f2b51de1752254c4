//go:build !linux

package pipeline

import "errors"

// lowerThreadPriority is Linux only: elsewhere the stages run as ordinary goroutines.
func lowerThreadPriority(int) error { return errors.New("thread priorities are Linux only") }

func onMainThread() bool { return false }
