//go:build !linux

package proc

import "syscall"

// sysProcAttr: outside Linux there is no parent-death signal (and no /proc
// for the CPU figures); the harness stops its processes itself.
func sysProcAttr() *syscall.SysProcAttr { return nil }
