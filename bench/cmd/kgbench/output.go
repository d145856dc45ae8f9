package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/keygate/keygate/bench"
)

// machine describes where the numbers were taken.
type machine struct {
	CPUs      int    `json:"nproc"`
	CPUModel  string `json:"cpu_model"`
	MemTotal  string `json:"mem_total"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	Commit    string `json:"git_commit"`
	Describe  string `json:"git_describe"`
	Keygate   string `json:"keygate_version"`
	Ghz       string `json:"ghz_version"`
	Vault     string `json:"vault_version,omitempty"`
	LoadStart string `json:"loadavg_start"` // /proc/loadavg: was anything else running?
	LoadEnd   string `json:"loadavg_end"`
}

type report struct {
	Schema      int                `json:"schema"`
	Started     time.Time          `json:"started"`
	Finished    time.Time          `json:"finished"`
	Seconds     float64            `json:"duration_s"`
	Machine     machine            `json:"machine"`
	Config      *config            `json:"config"`
	LoadGens    map[string]string  `json:"load_generators"`
	Results     []bench.Result     `json:"results"`
	Comparisons []bench.Comparison `json:"comparisons"`
	VaultReads  *vaultReads        `json:"vault_reads,omitempty"`
	Pinning     *pinning           `json:"pinning,omitempty"`           // the pinned suite's CPUs and response sizes
	GhzSame     *responses         `json:"ghz_same_response,omitempty"` // the ghz suite's cached-allow response sizes
	Notes       []string           `json:"notes,omitempty"`
}

func (h *harness) describeMachine() machine {
	m := machine{
		LoadStart: h.loadStart,
		LoadEnd:   firstLine(os.ReadFile("/proc/loadavg")),
		CPUs:      runtime.NumCPU(),
		CPUModel:  procField("/proc/cpuinfo", "model name"),
		MemTotal:  procField("/proc/meminfo", "MemTotal"),
		Kernel:    firstLine(os.ReadFile("/proc/sys/kernel/osrelease")),
		GoVersion: runtime.Version(),
		Commit:    firstLine(exec.Command("git", "rev-parse", "HEAD").Output()),
		Describe:  firstLine(exec.Command("git", "describe", "--always", "--dirty").Output()),
		Keygate:   firstLine(exec.Command(h.cfg.keygate, "version").Output()),
		Ghz:       moduleVersion(h.cfg.ghz, "github.com/bojand/ghz"),
	}
	if h.cfg.Vault {
		m.Vault = firstLine(exec.Command(h.cfg.vault, "version").Output())
	}
	return m
}

func firstLine(b []byte, err error) string {
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}

// procField is the value of the first "name : value" line of a /proc file.
func procField(path, name string) string {
	data, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// moduleVersion reads a Go binary's main module version (`go version -m`).
func moduleVersion(bin, module string) string {
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && (f[0] == "mod" || f[0] == "dep") && f[1] == module {
			return f[2]
		}
	}
	return "unknown"
}

func (h *harness) output(started time.Time) error {
	m := h.describeMachine()
	rep := report{
		Schema: 1, Started: started.UTC(), Finished: time.Now().UTC(), Machine: m, Config: h.cfg,
		LoadGens: map[string]string{
			"ghz":      "ghz " + m.Ghz + ", binary request (-B), template processing off, " + fmt.Sprint(h.cfg.Connections) + " connection(s)",
			"built-in": "kgbench's own grpc-go client: pre-encoded requests, every answer decoded (generated code) to tally its decision, " + fmt.Sprint(h.cfg.Connections) + " connection(s)",
		},
		Results: h.results, Comparisons: bench.Compare(h.results), VaultReads: h.reads, Pinning: h.pinning, GhzSame: h.ghzSame, Notes: h.notes,
	}
	rep.Seconds = rep.Finished.Sub(rep.Started).Round(time.Second).Seconds()
	if err := h.writeFiles(&rep); err != nil {
		return err
	}
	h.printSummary(&rep)
	return nil
}

func (h *harness) writeFiles(rep *report) error {
	if err := os.MkdirAll(h.cfg.out, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	stamp := rep.Started.Format("20060102T150405Z")
	title := fmt.Sprintf("keygate vs floor, %s: %s, %d CPUs, %s", rep.Started.Format("2006-01-02"), rep.Machine.CPUModel, rep.Machine.CPUs, rep.Machine.Describe)
	subtitle := fmt.Sprintf("load: ghz %s, binary requests (cold-miss and 1cpu: built-in generator); server CPU = utime+stime from /proc; network: %s",
		rep.Machine.Ghz, h.cfg.Network)
	svg := bench.Chart(title, subtitle, rep.Results)
	for name, data := range map[string][]byte{
		stamp + ".json": js, "latest.json": js, stamp + ".svg": []byte(svg), "latest.svg": []byte(svg),
	} {
		if err := os.WriteFile(filepath.Join(h.cfg.out, name), data, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "kgbench: wrote %s/{%s,latest}.{json,svg}\n", h.cfg.out, stamp)
	return nil
}

func (h *harness) printSummary(rep *report) {
	m := rep.Machine
	fmt.Printf("\n%s (%s) vs floor: %d × %s, Go %s, kernel %s, network %s\n",
		m.Keygate, m.Describe, m.CPUs, m.CPUModel, m.GoVersion, m.Kernel, h.cfg.Network)
	fmt.Printf("load average before: %s, after: %s\n", m.LoadStart, m.LoadEnd)
	fmt.Printf("runs: %d × (keygate, floor) interleaved per configuration, each ≤ %s and ≤ %d Checks; fixed rate: %d Check/s for %s per run\n",
		h.cfg.Reps, h.cfg.Duration, h.cfg.Count, h.cfg.Rate, h.cfg.RateDuration)
	fmt.Printf("load: %s; built-in: %s\n", rep.LoadGens["ghz"], rep.LoadGens["built-in"])
	if g := rep.GhzSame; g != nil {
		fmt.Printf("ghz cached-allow rows: keygate, floor, floor-same-response interleaved; allow response: keygate %d bytes, floor-same-response %d (proto.Equal; byte-identical: %t), floor %d\n",
			g.KeygateBytes, g.SameBytes, g.SameIdentical, g.FloorAllowBytes)
	}
	if p := rep.Pinning; p != nil {
		fmt.Printf("1cpu rows: keygate, floor, floor-same-response interleaved, each alone on CPU %s (taskset), the built-in generator on CPU %s;"+
			" allow response: keygate %d bytes, floor-same-response %d (proto.Equal; byte-identical: %t), floor %d\n",
			p.ServerCPUs, p.LoadCPUs, p.KeygateBytes, p.SameBytes, p.SameIdentical, p.FloorAllowBytes)
	}
	fmt.Println()
	fmt.Print(bench.Table(rep.Results))
	if r := rep.VaultReads; r != nil {
		fmt.Printf("\nVault reads (audit log): %d concurrent Checks of one new key → %d read(s) of its record (want 1); outcomes %v, errors %v\n",
			r.NewKeyChecks, r.NewKeyReads, r.NewKeyRun.Outcomes, r.NewKeyRun.Errors)
		fmt.Printf("Vault reads (audit log): %d distinct malformed keys (%.0f Check/s) → %d key-record read(s) (want 0); outcomes %v, errors %v\n",
			r.Malformed, r.MalformedRun.CheckPerSec, r.MalformedReads, r.MalformedRun.Outcomes, r.MalformedRun.Errors)
	}
	for _, n := range rep.Notes {
		fmt.Println("note:", n)
	}
	fmt.Printf("\ntotal %.0fs; JSON and SVG in %s (latest.json, latest.svg)\n", rep.Seconds, h.cfg.out)
}
