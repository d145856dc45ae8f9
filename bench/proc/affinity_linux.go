package proc

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Affinity is the CPUs thread tid may run on (0: the calling thread).
func Affinity(tid int) ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(tid, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity %d: %w", tid, err)
	}
	var cpus []int
	for cpu := range len(set) * 64 {
		if set.IsSet(cpu) {
			cpus = append(cpus, cpu)
		}
	}
	return cpus, nil
}

// Pin restricts every thread of process pid to cpus and returns how many
// threads it has. A thread inherits its creator's affinity, so Pin repeats
// its pass over /proc/PID/task until a pass finds no thread it has not
// pinned; a thread that exits meanwhile is skipped.
func Pin(pid int, cpus []int) (int, error) {
	var set unix.CPUSet
	for _, cpu := range cpus {
		set.Set(cpu)
	}
	pinned := map[int]bool{}
	for range 10 {
		tids, err := tasks(pid)
		if err != nil {
			return 0, err
		}
		fresh := 0
		for _, tid := range tids {
			if pinned[tid] {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				return 0, fmt.Errorf("pin thread %d of %d to CPUs %s: %w", tid, pid, CPUList(cpus), err)
			}
			pinned[tid] = true
			fresh++
		}
		if fresh == 0 {
			return len(tids), nil
		}
	}
	return 0, fmt.Errorf("pin %d: it keeps creating threads", pid)
}

// tasks lists the thread ids of process pid.
func tasks(pid int) ([]int, error) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(entries))
	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}
