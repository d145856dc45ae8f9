//go:build !linux

package rltest

import (
	"syscall"
	"time"
)

// sysProcAttr: outside Linux there is no parent-death signal; cleanups
// stop the children, but a test binary that crashes may leave them running.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// stopped cannot tell outside Linux: Pause then waits a moment instead.
func stopped(int) bool {
	time.Sleep(100 * time.Millisecond)
	return true
}
