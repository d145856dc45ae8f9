package vaulttest

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestCluster: a 3-node Raft cluster serves writes and reads through its
// standbys, elects a new active node when the active one is killed, keeps
// the data, and takes the killed node back as a voter.
func TestCluster(t *testing.T) {
	c := Cluster(t, 3)
	seen := map[string]bool{}
	for i := range c.Len() {
		if !strings.HasPrefix(c.Addr(i), "http://127.0.0.1:") || seen[c.Addr(i)] {
			t.Fatalf("node %d address %q", i, c.Addr(i))
		}
		seen[c.Addr(i)] = true
	}
	old := c.Leader()
	if old < 0 || c.Token == "" {
		t.Fatalf("leader %d, token set %v", old, c.Token != "")
	}
	a, b := (old+1)%3, (old+2)%3
	ctx := context.Background()
	if _, err := c.Client(t, a).KVv2("secret").Put(ctx, "vaulttest/ha", map[string]any{"v": "1"}); err != nil {
		t.Fatalf("write through standby %s: %v", c.NodeID(a), err)
	}
	if s, err := c.Client(t, b).KVv2("secret").Get(ctx, "vaulttest/ha"); err != nil || s.Data["v"] != "1" {
		t.Fatalf("read through standby %s: %v", c.NodeID(b), err)
	}

	c.Kill(old)
	killed := time.Now()
	next := -1
	for next < 0 && time.Since(killed) < 30*time.Second {
		time.Sleep(20 * time.Millisecond)
		next = c.Leader()
	}
	election := time.Since(killed)
	if next < 0 || next == old {
		t.Fatalf("no new active node within 30s (got %d)", next)
	}
	if s, err := c.Client(t, a).KVv2("secret").Get(ctx, "vaulttest/ha"); err != nil || s.Data["v"] != "1" {
		t.Fatalf("read after the election: %v", err)
	}

	start := time.Now()
	c.Restart(t, old)
	rejoin := time.Since(start)
	if servers := c.Servers(t); voters(servers) != 3 {
		t.Errorf("after restart: want 3 voters: %+v", servers)
	}
	t.Logf("cluster: start-up %s, %s killed, %s active after %s, %s back as a voter in %s",
		c.Startup.Round(time.Millisecond), c.NodeID(old), c.NodeID(next), election.Round(time.Millisecond),
		c.NodeID(old), rejoin.Round(time.Millisecond))
}

func voters(servers []RaftServer) int {
	n := 0
	for _, s := range servers {
		if s.Voter {
			n++
		}
	}
	return n
}
