package proc

import (
	"os"
	"slices"
	"testing"
)

// TestPinSelf pins the test binary to the CPUs it already has (a no-op for
// the machine) and checks every thread reports them.
func TestPinSelf(t *testing.T) {
	cpus, err := Affinity(0)
	if err != nil || len(cpus) == 0 {
		t.Fatalf("Affinity(0) = %v, %v", cpus, err)
	}
	n, err := Pin(os.Getpid(), cpus)
	if err != nil || n == 0 {
		t.Fatalf("Pin(self, %v) = %d, %v", cpus, n, err)
	}
	tids, err := tasks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, tid := range tids {
		if got, err := Affinity(tid); err == nil && !slices.Equal(got, cpus) {
			t.Errorf("thread %d: CPUs %v, want %v", tid, got, cpus)
		}
	}
	if _, err := Pin(os.Getpid(), nil); err == nil {
		t.Error("Pin to no CPU: no error")
	}
}
