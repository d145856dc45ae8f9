package main

import "syscall"

// sysProcAttr makes the kernel kill a started server when the harness dies,
// so no server or Vault outlives a benchmark that crashed or was killed.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
