//go:build !linux

package rltest

import "syscall"

// sysProcAttr: outside Linux there is no parent-death signal; cleanups
// stop the children, but a test binary that crashes may leave them running.
func sysProcAttr() *syscall.SysProcAttr { return nil }
