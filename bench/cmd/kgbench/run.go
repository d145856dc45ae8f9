package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/keygate/keygate/bench"
	"github.com/keygate/keygate/bench/proc"
)

// run is the whole benchmark: file-store scenarios with ghz and the
// fixed-rate run, cached-allow with server and load generator on their own
// CPUs, cold misses and Vault reads (each unless disabled), then the outputs.
func run(ctx context.Context, cfg *config) error {
	started := time.Now()
	tmp, err := os.MkdirTemp("", "kgbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // keys, requests and logs
	h := &harness{cfg: cfg, tmp: tmp, protoset: filepath.Join(tmp, "check.protoset"), loadStart: firstLine(os.ReadFile("/proc/loadavg"))}
	if err := h.writeProtoset(); err != nil {
		return err
	}
	fs, err := h.fileSetup(ctx)
	if err != nil {
		return err
	}
	if cfg.UseGhz {
		if err := h.fileSuites(ctx, fs); err != nil {
			return err
		}
	} else {
		h.note("BENCH_GHZ=0: ghz scenarios and the fixed-rate run skipped")
	}
	if cfg.Pinned {
		if err := h.pinnedSuite(ctx, fs); err != nil {
			return fmt.Errorf("pinned suite: %w", err)
		}
	} else {
		h.note("BENCH_PINNED=0: cached-allow on one core each skipped")
	}
	if cfg.Vault {
		if err := h.vaultSuite(ctx); err != nil {
			return fmt.Errorf("vault scenarios: %w", err)
		}
	} else {
		h.note("BENCH_VAULT=0: cold misses and Vault reads skipped")
	}
	return h.output(started)
}

func (h *harness) writeProtoset() error {
	b, err := bench.Protoset()
	if err != nil {
		return err
	}
	return os.WriteFile(h.protoset, b, 0o600)
}

// fileStore is what the file-store suites share: keygate's store, the
// floor's key file and the scenarios (cached-allow first).
type fileStore struct {
	store, keyFile string
	ss             []scenario
}

// fileSetup issues the keys into a file store and writes the requests and
// the floor's key file.
func (h *harness) fileSetup(ctx context.Context) (*fileStore, error) {
	fs := &fileStore{store: "file:" + filepath.Join(h.tmp, "keys.yaml"), keyFile: filepath.Join(h.tmp, "floor-keys.txt")}
	ss, validKey, err := h.fileScenarios(ctx, fs.store)
	if err != nil {
		return nil, err
	}
	fs.ss = ss
	return fs, writeKeyFile(fs.keyFile, []string{validKey})
}

// fileSuites serves keygate on a file store and the floor, and runs the
// ghz scenarios and the fixed-rate run against them.
func (h *harness) fileSuites(ctx context.Context, fs *fileStore) error {
	ss := fs.ss
	kg, err := proc.StartServer(ctx, h.tmp, "keygate", nil, h.cfg.keygate, "--grpc-addr", "serve", "--store", fs.store, "--log-level", "warn")
	if err != nil {
		return err
	}
	defer kg.Stop()
	fl, err := proc.StartServer(ctx, h.tmp, "floor", nil, h.cfg.floor, "--addr", "--keys", fs.keyFile)
	if err != nil {
		return err
	}
	defer fl.Stop()
	same, err := h.startSameResponse(ctx, fs, kg, fl)
	if err != nil {
		return err
	}
	defer same.Stop()
	if !proc.ResetPeakRSS(kg.PID()) {
		h.note("cannot reset VmHWM (/proc/PID/clear_refs): RSS is the peak since the server started")
	}
	h.progress("keygate (file store) on %s, floor on %s, floor-same-response on %s; network: %s", kg.Addr, fl.Addr, same.Addr, h.cfg.Network)
	if err := h.ghzSuite(ctx, ss, kg, fl, same); err != nil {
		return err
	}
	return h.rateSuite(ctx, ss[0], kg, fl)
}

// startSameResponse starts the floor answering with keygate's allow
// response to cached-allow (ss[0]), and checks it answers as keygate does.
func (h *harness) startSameResponse(ctx context.Context, fs *fileStore, kg, fl *proc.Server) (*proc.Server, error) {
	req, err := fs.ss[0].req.Marshal()
	if err != nil {
		return nil, err
	}
	h.ghzSame = &responses{}
	respFile := filepath.Join(h.tmp, "keygate-allow-ghz.json")
	if err := saveAllowResponse(ctx, kg.Addr, req, respFile, h.ghzSame); err != nil {
		return nil, err
	}
	same, err := proc.StartServer(ctx, h.tmp, "floor-same-response", nil, h.cfg.floor, "--addr", "--keys", fs.keyFile, "--response", respFile)
	if err != nil {
		return nil, err
	}
	if err := checkSameResponse(ctx, kg.Addr, same.Addr, fl.Addr, req, h.ghzSame); err != nil {
		same.Stop()
		return nil, err
	}
	return same, nil
}
