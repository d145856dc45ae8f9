package vaulttest

import "syscall"

// sysProcAttr makes the kernel kill Vault when the test process dies
// (panic, -timeout, SIGKILL), so no dev server outlives its tests.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
