package proc

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// CPUList formats CPU numbers in the kernel's list format ("0-2,5"), as
// taskset -c reads it and /proc/PID/status (Cpus_allowed_list) writes it.
func CPUList(cpus []int) string {
	cpus = slices.Clone(cpus)
	slices.Sort(cpus)
	cpus = slices.Compact(cpus)
	var parts []string
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(cpus[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", cpus[i], cpus[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// SplitCPUs divides the CPUs a harness may use (its affinity) between a
// server under test, which gets the lowest one, and the load generator,
// which gets the rest. It fails with fewer than two CPUs.
func SplitCPUs(allowed []int) (server, load []int, err error) {
	allowed = slices.Clone(allowed)
	slices.Sort(allowed)
	allowed = slices.Compact(allowed)
	if len(allowed) < 2 {
		return nil, nil, fmt.Errorf("need 2 CPUs, may use %d (%s)", len(allowed), CPUList(allowed))
	}
	return allowed[:1], allowed[1:], nil
}
