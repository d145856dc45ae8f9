package rltest

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// sysProcAttr makes the kernel kill the child when the test process dies
// (panic, -timeout, SIGKILL), so no Redis or service outlives its tests.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// stopped reports whether process pid is stopped (state T in
// /proc/PID/stat): a SIGSTOP takes effect some time after kill returns.
func stopped(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(data, ')')
	return i >= 0 && i+2 < len(data) && data[i+2] == 'T'
}
