package proc

import "syscall"

// sysProcAttr makes the kernel kill a started process when the harness
// dies, so no server or Vault outlives a harness that crashed or was killed.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
