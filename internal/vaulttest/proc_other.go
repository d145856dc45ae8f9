//go:build !linux

package vaulttest

import "syscall"

// sysProcAttr: outside Linux there is no parent-death signal; Main stops
// the server, but a test binary that crashes may leave it running.
func sysProcAttr() *syscall.SysProcAttr { return nil }
