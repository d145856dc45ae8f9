package vaulttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"
)

// VaultCluster is n real Vault servers (not dev mode) of one test's own,
// forming one cluster with integrated Raft storage: every node listens on
// loopback with plain HTTP, is initialised with a single unseal key and
// unsealed, and is a Raft voter; KV v2 is mounted at "secret/". Standbys
// forward requests to the active node, so any node's address serves the
// whole API. Its processes are killed and its files removed when the test
// ends (and the processes die with the test process).
type VaultCluster struct {
	Token   string        // root token
	Startup time.Duration // how long Cluster took: processes, init, unseal, Raft voters, KV mount

	bin       string
	unsealKey string
	nodes     []*clusterNode
	http      *http.Client // for the harness's own API calls
}

// clusterNode is one `vault server -config` process and its files.
type clusterNode struct {
	id          string // Raft node_id: node0, node1, ...
	dir         string // HOME, node.hcl, vault.log, raft/
	apiAddr     string // 127.0.0.1:PORT (plain HTTP)
	clusterAddr string // 127.0.0.1:PORT (Vault's own TLS)

	process
}

// nodeConfig fills testdata/vault/raft-node.hcl.
type nodeConfig struct {
	NodeID, DataDir, APIAddr, ClusterAddr string
	Peers                                 []string // retry_join leader_api_addr of every other node
}

// Cluster starts an n-node cluster for t alone and waits until it is
// ready: all nodes unsealed Raft voters, one active, KV v2 at secret/. Like
// Server, it skips t without a Vault binary, or fails it when $CI is set.
func Cluster(t testing.TB, n int) *VaultCluster {
	t.Helper()
	bin := requireBinary(t)
	if n < 1 {
		t.Fatalf("vaulttest: cluster of %d nodes", n)
	}
	tmpl, err := nodeTemplate()
	if err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	start := time.Now()
	for attempt := 0; ; attempt++ {
		c := &VaultCluster{bin: bin, http: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}}
		dir := t.TempDir()
		t.Cleanup(c.killAll) // runs before dir's removal: cleanups run last-in first-out
		err = c.launch(tmpl, dir, n)
		if err == nil {
			err = c.form()
		}
		if err == nil {
			c.Startup = time.Since(start)
			t.Logf("vaulttest: %d-node Raft cluster ready in %s", n, c.Startup.Round(time.Millisecond))
			return c
		}
		c.killAll()
		if attempt == 2 || !errors.Is(err, errPortTaken) {
			t.Fatalf("vaulttest: cluster: %v\n%s", err, c.logTails())
		}
	}
}

// nodeTemplate reads the node configuration template from the repository.
func nodeTemplate() (*template.Template, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(root, "testdata", "vault", "raft-node.hcl")
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return template.New(path).Option("missingkey=error").Parse(string(text))
}

// launch writes every node's configuration on fresh loopback ports and
// starts the processes.
func (c *VaultCluster) launch(tmpl *template.Template, dir string, n int) error {
	ports, err := freePorts(2 * n)
	if err != nil {
		return err
	}
	for i := range n {
		c.nodes = append(c.nodes, &clusterNode{
			id:          fmt.Sprintf("node%d", i),
			dir:         filepath.Join(dir, fmt.Sprintf("node%d", i)),
			apiAddr:     "127.0.0.1:" + ports[2*i],
			clusterAddr: "127.0.0.1:" + ports[2*i+1],
		})
	}
	for _, node := range c.nodes {
		if err := c.writeConfig(tmpl, node); err != nil {
			return err
		}
		if err := node.start(c.bin); err != nil {
			return err
		}
	}
	return nil
}

// freePorts returns n distinct free loopback ports: all are held open
// until all are chosen, so they differ from each other.
func freePorts(n int) ([]string, error) {
	var ports []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		_, port, _ := net.SplitHostPort(l.Addr().String())
		ports = append(ports, port)
	}
	return ports, nil
}

func (c *VaultCluster) writeConfig(tmpl *template.Template, node *clusterNode) error {
	cfg := nodeConfig{NodeID: node.id, DataDir: filepath.Join(node.dir, "raft"),
		APIAddr: node.apiAddr, ClusterAddr: node.clusterAddr}
	for _, peer := range c.nodes {
		if peer != node {
			cfg.Peers = append(cfg.Peers, "http://"+peer.apiAddr)
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, cfg); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(node.dir, "node.hcl"), []byte(b.String()), 0o600)
}

// start runs `vault server -config=node.hcl` in the node's directory,
// appending its output to vault.log.
func (n *clusterNode) start(bin string) error {
	logFile, err := os.OpenFile(n.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	fmt.Fprintf(logFile, "==== vaulttest: starting %s on %s at %s\n", n.id, n.apiAddr, time.Now().Format(time.RFC3339))
	_, err = n.process.start(bin, []string{"server", "-config=" + filepath.Join(n.dir, "node.hcl")}, n.dir, logFile)
	return err
}

func (n *clusterNode) logPath() string { return filepath.Join(n.dir, "vault.log") }

func (c *VaultCluster) killAll() {
	for _, node := range c.nodes {
		node.kill()
	}
	c.http.CloseIdleConnections()
}

// Addr is node i's API address, http://127.0.0.1:PORT.
func (c *VaultCluster) Addr(i int) string { return "http://" + c.nodes[i].apiAddr }

// NodeID is node i's Raft node id.
func (c *VaultCluster) NodeID(i int) string { return c.nodes[i].id }

// Len is the number of nodes.
func (c *VaultCluster) Len() int { return len(c.nodes) }

// Kill stops node i abruptly (SIGKILL) and waits until it has exited; its
// Raft data stays, and Restart brings it back.
func (c *VaultCluster) Kill(i int) { c.nodes[i].kill() }

// Restart starts a killed node again on the same addresses, unseals it and
// waits until it is back in the cluster: every node a healthy Raft voter.
func (c *VaultCluster) Restart(t testing.TB, i int) {
	t.Helper()
	node := c.nodes[i]
	node.kill()
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = node.start(c.bin); err == nil {
			err = c.waitUp(node)
		}
		if !errors.Is(err, errPortTaken) {
			break
		}
		time.Sleep(100 * time.Millisecond) // same address: wait for the port
	}
	if err == nil {
		err = c.unseal(node)
	}
	if err == nil {
		err = c.waitStable()
	}
	if err != nil {
		t.Fatalf("vaulttest: restart %s: %v\n%s", node.id, err, c.logTails())
	}
}

// logTails is the end of every node's log, for failure messages.
func (c *VaultCluster) logTails() string {
	var b strings.Builder
	for _, node := range c.nodes {
		fmt.Fprintf(&b, "---- %s (last lines) ----\n%s\n", node.logPath(), logTail(node.logPath(), 25))
	}
	return b.String()
}

// poll calls cond every 50 ms, each call bounded by requestTimeout, until
// it returns nil, the node exits (when node is not nil), or startTimeout
// passes; it returns cond's last error.
func poll(node *clusterNode, what string, cond func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	var exited <-chan struct{}
	if node != nil {
		exited = node.exited()
	}
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, requestTimeout)
		err := cond(attempt)
		cancelAttempt()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			if strings.Contains(logTail(node.logPath(), 40), "address already in use") {
				return fmt.Errorf("%s: %s: %w", node.id, node.apiAddr, errPortTaken)
			}
			return fmt.Errorf("%s: %s: vault exited (last: %v)", node.id, what, err)
		case <-ctx.Done():
			return fmt.Errorf("%s: not within %v: %v", what, startTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
