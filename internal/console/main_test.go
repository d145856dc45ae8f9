package console_test

import (
	"testing"

	"go.uber.org/goleak"
)

// One TestMain for the package's internal and external tests: every
// server, client connection and Run loop a test starts is gone at the end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
