package ratelimit_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/ratelimit"
)

// A Client charges a key's global limits to envoyproxy/ratelimit; keygate
// serve passes it to extauthz as Config.Global. Here nothing listens on
// the address, so the call fails and the failure mode answers: with
// FailAuto, a key with only a global rate limit is allowed.
func ExampleNew() {
	cfg := ratelimit.DefaultConfig()
	cfg.Service = "127.0.0.1:1" // the service's gRPC address, e.g. ratelimit.ratelimit.svc:8081
	c, err := ratelimit.New(cfg, slog.Default())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	lim := &policy.Limits{RateRequests: 100, RateWindow: time.Minute}
	reason, _ := c.Take(context.Background(), "3cYw0jZ1mB7Q", lim)
	fmt.Println(reason)
	// Output: allowed
}
