package keyadmin

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseLifetime reads a positive duration written as Go's time.Duration
// or with a leading day count: "90d", "36h", "1d12h".
func ParseLifetime(s string) (time.Duration, error) {
	orig := s
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q: want e.g. 90d, 12h or 1d12h", orig)
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
	}
	var rest time.Duration
	if s != "" {
		var err error
		if rest, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q: want e.g. 90d, 12h or 1d12h", orig)
		}
	}
	if d := days + rest; d > 0 {
		return d, nil
	}
	return 0, fmt.Errorf("%q: must be positive", orig)
}
