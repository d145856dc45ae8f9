package rltest

import "syscall"

// sysProcAttr makes the kernel kill the child when the test process dies
// (panic, -timeout, SIGKILL), so no Redis or service outlives its tests.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
