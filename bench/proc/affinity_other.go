//go:build !linux

package proc

import (
	"errors"
	"fmt"
)

var errNoAffinity = fmt.Errorf("CPU affinity: %w outside Linux", errors.ErrUnsupported)

// Affinity is not available outside Linux.
func Affinity(int) ([]int, error) { return nil, errNoAffinity }

// Pin is not available outside Linux.
func Pin(int, []int) (int, error) { return 0, errNoAffinity }
