package vaulttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// form turns the started processes into a ready cluster through Vault's
// HTTP API: initialise node 0 (one unseal key), unseal it, unseal the others
// (they join with retry_join), wait for every node to be a Raft voter, and
// mount KV v2 at secret/.
func (c *VaultCluster) form() error {
	for _, node := range c.nodes {
		if err := c.waitUp(node); err != nil {
			return err
		}
	}
	first := c.nodes[0]
	if err := c.initialise(first); err != nil {
		return err
	}
	if err := c.unseal(first); err != nil {
		return err
	}
	// Autopilot promotes a joined node to voter once it has been healthy
	// for server_stabilization_time (10 s by default); 1 s is enough on
	// loopback and saves ~9 s of start-up.
	autopilot := map[string]any{"server_stabilization_time": "1s"}
	if err := c.expect(first, http.MethodPost, "sys/storage/raft/autopilot/configuration", autopilot, nil); err != nil {
		return err
	}
	if err := c.unsealAll(c.nodes[1:]); err != nil {
		return err
	}
	if err := c.waitStable(); err != nil {
		return err
	}
	return c.mountKV(first)
}

// requestTimeout bounds one API call of the harness (but sys/init).
const requestTimeout = 2 * time.Second

// call sends one request with the root token (if known) to node and
// decodes a 2xx JSON answer into out (if not nil). err is set only when no
// complete answer came. ctx bounds it.
func (c *VaultCluster) call(ctx context.Context, node *clusterNode, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+node.apiAddr+"/v1/"+path, body)
	if err != nil {
		return 0, err
	}
	if c.Token != "" {
		req.Header.Set("X-Vault-Token", c.Token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// expect retries one request until it gets a 2xx answer.
func (c *VaultCluster) expect(node *clusterNode, method, path string, in, out any) error {
	return poll(node, method+" "+path, func(ctx context.Context) error {
		status, err := c.call(ctx, node, method, path, in, out)
		if err == nil && status/100 != 2 {
			err = fmt.Errorf("HTTP %d", status)
		}
		return err
	})
}

// waitUp waits until node answers HTTP at all (sealed or not).
func (c *VaultCluster) waitUp(node *clusterNode) error {
	return poll(node, "listening", func(ctx context.Context) error {
		_, err := c.call(ctx, node, http.MethodGet, "sys/health", nil, nil)
		return err
	})
}

// initialise calls sys/init once, with a long timeout: it takes seconds
// (Raft bootstrap, barrier, root token), and a retry after a timeout would
// only hear "already initialized" and never see the keys.
func (c *VaultCluster) initialise(node *clusterNode) error {
	var init struct {
		Keys      []string `json:"keys"`
		RootToken string   `json:"root_token"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	req := map[string]int{"secret_shares": 1, "secret_threshold": 1}
	status, err := c.call(ctx, node, http.MethodPut, "sys/init", req, &init)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("HTTP %d", status)
	}
	if err != nil {
		return fmt.Errorf("%s: sys/init: %w", node.id, err)
	}
	if len(init.Keys) != 1 || init.RootToken == "" {
		return fmt.Errorf("%s: sys/init: %d keys, root token set: %v", node.id, len(init.Keys), init.RootToken != "")
	}
	c.unsealKey, c.Token = init.Keys[0], init.RootToken
	return nil
}

// unseal gives node the unseal key until it is unsealed and active or a
// standby. A node that has not joined yet joins with the key (retry_join
// tries every 2 s), so the key is sent again every second while sealed.
func (c *VaultCluster) unseal(node *clusterNode) error {
	var sent time.Time
	return poll(node, "unsealed", func(ctx context.Context) error {
		var seal struct {
			Sealed bool `json:"sealed"`
		}
		if _, err := c.call(ctx, node, http.MethodGet, "sys/seal-status", nil, &seal); err != nil {
			return err
		}
		if seal.Sealed {
			if time.Since(sent) >= time.Second {
				sent = time.Now()
				c.call(ctx, node, http.MethodPut, "sys/unseal", map[string]string{"key": c.unsealKey}, nil)
			}
			return errors.New("sealed")
		}
		status, err := c.call(ctx, node, http.MethodGet, "sys/health", nil, nil)
		if err == nil && status != http.StatusOK && status != http.StatusTooManyRequests {
			err = fmt.Errorf("sys/health: HTTP %d, want 200 (active) or 429 (standby)", status)
		}
		return err
	})
}

// unsealAll unseals nodes in parallel: each joins on its own retry_join
// schedule (every 2 s).
func (c *VaultCluster) unsealAll(nodes []*clusterNode) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, node := range nodes {
		wg.Go(func() { errs[i] = c.unseal(node) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// RaftServer is one entry of sys/storage/raft/configuration.
type RaftServer struct {
	NodeID  string `json:"node_id"`
	Address string `json:"address"`
	Leader  bool   `json:"leader"`
	Voter   bool   `json:"voter"`
}

// Servers returns the Raft configuration as the active node reports it.
func (c *VaultCluster) Servers(t testing.TB) []RaftServer {
	t.Helper()
	active := c.Leader()
	if active < 0 {
		t.Fatalf("vaulttest: raft configuration: no active node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	servers, err := c.servers(ctx, c.nodes[active])
	if err != nil {
		t.Fatalf("vaulttest: raft configuration: %v", err)
	}
	return servers
}

func (c *VaultCluster) servers(ctx context.Context, active *clusterNode) ([]RaftServer, error) {
	var conf struct {
		Data struct {
			Config struct {
				Servers []RaftServer `json:"servers"`
			} `json:"config"`
		} `json:"data"`
	}
	status, err := c.call(ctx, active, http.MethodGet, "sys/storage/raft/configuration", nil, &conf)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("sys/storage/raft/configuration: HTTP %d", status)
	}
	return conf.Data.Config.Servers, err
}

// Leader returns the index of the active node (the one whose sys/leader
// says is_self), or -1 while there is none.
func (c *VaultCluster) Leader() int {
	for i, node := range c.nodes {
		if !node.running() {
			continue
		}
		var leader struct {
			IsSelf bool `json:"is_self"`
		}
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		status, err := c.call(ctx, node, http.MethodGet, "sys/leader", nil, &leader)
		cancel()
		if err == nil && status == http.StatusOK && leader.IsSelf {
			return i
		}
	}
	return -1
}

// waitStable waits until every node is a Raft voter, autopilot calls the
// cluster healthy, and every node's sys/leader names the same active node
// (so standbys can forward to it).
func (c *VaultCluster) waitStable() error {
	return poll(nil, "every node a healthy Raft voter", func(ctx context.Context) error {
		i := c.Leader()
		if i < 0 {
			return errors.New("no active node")
		}
		active := c.nodes[i]
		servers, err := c.servers(ctx, active)
		if err != nil {
			return err
		}
		var ids []string
		for _, s := range servers {
			if s.Voter {
				ids = append(ids, s.NodeID)
			}
		}
		for _, node := range c.nodes {
			if !slices.Contains(ids, node.id) {
				return fmt.Errorf("%s is not a voter (voters: %v)", node.id, ids)
			}
		}
		var state struct {
			Data struct {
				Healthy bool `json:"healthy"`
			} `json:"data"`
		}
		if _, err := c.call(ctx, active, http.MethodGet, "sys/storage/raft/autopilot/state", nil, &state); err != nil || !state.Data.Healthy {
			return fmt.Errorf("autopilot: not healthy yet (%v)", err)
		}
		return c.sameLeader(ctx)
	})
}

// sameLeader checks that every node names one leader address.
func (c *VaultCluster) sameLeader(ctx context.Context) error {
	var first string
	for _, node := range c.nodes {
		var leader struct {
			Addr string `json:"leader_address"`
		}
		if _, err := c.call(ctx, node, http.MethodGet, "sys/leader", nil, &leader); err != nil {
			return err
		}
		if leader.Addr == "" || first != "" && leader.Addr != first {
			return fmt.Errorf("%s names leader %q, another node %q", node.id, leader.Addr, first)
		}
		first = leader.Addr
	}
	return nil
}

// mountKV mounts KV v2 at secret/ and waits until every node serves it.
func (c *VaultCluster) mountKV(node *clusterNode) error {
	mount := map[string]any{"type": "kv", "options": map[string]string{"version": "2"}}
	if err := c.expect(node, http.MethodPost, "sys/mounts/secret", mount, nil); err != nil {
		return err
	}
	for _, n := range c.nodes {
		if err := c.expect(n, http.MethodGet, "secret/config", nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// Client returns a vault/api client for node i with the root token, a 10 s
// timeout and no retries (as Vault.Client).
func (c *VaultCluster) Client(t testing.TB, i int) *vaultapi.Client {
	t.Helper()
	return (&Vault{Addr: c.Addr(i), Token: c.Token}).Client(t)
}
