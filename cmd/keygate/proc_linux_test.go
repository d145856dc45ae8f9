package main

import "syscall"

// childProcAttr makes the kernel kill a child (a proxy) when the test
// process dies (panic, -timeout, SIGKILL), so none outlives its tests.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
