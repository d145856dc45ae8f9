//go:build !linux

package main

import "syscall"

// childProcAttr: without Pdeathsig, children are only killed at cleanup.
func childProcAttr() *syscall.SysProcAttr { return nil }
