//go:build !linux

package main

import "syscall"

// sysProcAttr: outside Linux there is no parent-death signal (and no /proc
// for the CPU figures); the harness stops its servers itself.
func sysProcAttr() *syscall.SysProcAttr { return nil }
