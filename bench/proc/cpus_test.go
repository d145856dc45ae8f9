package proc

import (
	"slices"
	"testing"
)

func TestCPUList(t *testing.T) {
	tests := []struct {
		cpus []int
		want string
	}{
		{nil, ""},
		{[]int{0}, "0"},
		{[]int{0, 1}, "0-1"},
		{[]int{1, 2, 3}, "1-3"},
		{[]int{0, 2, 3, 4, 7}, "0,2-4,7"},
		{[]int{5, 3, 4, 3}, "3-5"}, // unsorted, duplicate
		{[]int{1, 3, 5}, "1,3,5"},
	}
	for _, tt := range tests {
		if got := CPUList(tt.cpus); got != tt.want {
			t.Errorf("CPUList(%v) = %q, want %q", tt.cpus, got, tt.want)
		}
	}
}

func TestSplitCPUs(t *testing.T) {
	tests := []struct {
		name         string
		allowed      []int
		server, load []int
	}{
		{"two", []int{0, 1}, []int{0}, []int{1}},
		{"four", []int{0, 1, 2, 3}, []int{0}, []int{1, 2, 3}},
		{"not from 0, unsorted", []int{6, 2, 4}, []int{2}, []int{4, 6}},
	}
	for _, tt := range tests {
		server, load, err := SplitCPUs(tt.allowed)
		if err != nil || !slices.Equal(server, tt.server) || !slices.Equal(load, tt.load) {
			t.Errorf("%s: SplitCPUs(%v) = %v, %v, %v; want %v, %v", tt.name, tt.allowed, server, load, err, tt.server, tt.load)
		}
	}
	for _, allowed := range [][]int{nil, {0}, {3, 3}} {
		if _, _, err := SplitCPUs(allowed); err == nil {
			t.Errorf("SplitCPUs(%v): no error, want one (fewer than 2 CPUs)", allowed)
		}
	}
}
