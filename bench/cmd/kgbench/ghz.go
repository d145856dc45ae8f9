package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate/bench"
	"github.com/keygate/keygate/bench/proc"
)

// ghzRun is one ghz invocation: bounded by count and by time.
type ghzRun struct {
	target  *proc.Server
	reqFile string
	conc    int
	rate    int // Check/s, 0 = unlimited
	count   int
	dur     time.Duration
}

type ghzReport struct {
	Date    time.Time     `json:"date"`
	Total   time.Duration `json:"total"`
	Details []struct {
		Latency time.Duration `json:"latency"`
		Status  string        `json:"status"`
		Error   string        `json:"error"`
	} `json:"details"`
}

func (h *harness) ghzArgs(g ghzRun, out string) []string {
	itoa := strconv.Itoa
	args := []string{"--insecure", "--protoset", h.protoset, "--call", bench.CheckMethod,
		"-B", g.reqFile, "--disable-template-functions", "--disable-template-data",
		"-c", itoa(g.conc), "-n", itoa(g.count), "-x", g.dur.String(), "--duration-stop", "ignore",
		"--connections", itoa(min(h.cfg.Connections, g.conc)), "-t", "5s", "-O", "json", "-o", out}
	if g.rate > 0 {
		args = append(args, "--rps", itoa(g.rate))
	}
	return append(args, g.target.Addr)
}

// runGhz runs ghz once and measures the server (CPU, peak RSS) around it
// and the ghz process itself (CPU until the load ended).
func (h *harness) runGhz(ctx context.Context, g ghzRun) (bench.Run, error) {
	out := filepath.Join(h.tmp, "ghz-report.json")
	ctx, cancel := context.WithTimeout(ctx, g.dur+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.cfg.ghz, h.ghzArgs(g, out)...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	pid := g.target.PID()
	proc.ResetPeakRSS(pid)
	cpu0, err := proc.CPUSeconds(pid)
	if err != nil {
		return bench.Run{}, err
	}
	if err := cmd.Start(); err != nil {
		return bench.Run{}, fmt.Errorf("ghz: %w", err)
	}
	samples := sampleCPU(cmd.Process.Pid)
	waitErr := cmd.Wait()
	cpu1, err := proc.CPUSeconds(pid)
	if err != nil {
		return bench.Run{}, fmt.Errorf("%s died during the run? %w (see %s)", g.target.Name, err, g.target.Log)
	}
	if waitErr != nil {
		return bench.Run{}, fmt.Errorf("ghz: %v: %s", waitErr, strings.TrimSpace(stderr.String()))
	}
	rep, err := readGhzReport(out)
	if err != nil {
		return bench.Run{}, err
	}
	run := rep.run()
	run.ServerCPUS = cpu1 - cpu0
	run.ClientCPUS = samples.at(rep.Date.Add(rep.Total))
	run.MaxRSSKiB = proc.PeakRSSKiB(pid)
	run.Finish()
	return run, nil
}

func readGhzReport(path string) (*ghzReport, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ghz report: %w", err)
	}
	defer os.Remove(path)
	var rep ghzReport
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, fmt.Errorf("ghz report: %w", err)
	}
	return &rep, nil
}

// run turns the report into a Run: latencies of OK responses only, every
// other response counted as an error by status and message.
func (rep *ghzReport) run() bench.Run {
	r := bench.Run{Requests: len(rep.Details), Seconds: rep.Total.Seconds()}
	r.Lat = make([]time.Duration, 0, len(rep.Details))
	for _, d := range rep.Details {
		if d.Status == "OK" && d.Error == "" {
			r.OK++
			r.Lat = append(r.Lat, d.Latency)
			continue
		}
		if r.Errors == nil {
			r.Errors = map[string]int{}
		}
		r.Errors[d.Status+": "+d.Error]++
	}
	return r
}

// cpuSamples is a process's CPU time sampled every 50 ms while it runs.
type cpuSamples struct {
	mu sync.Mutex
	t  []time.Time
	s  []float64
}

func sampleCPU(pid int) *cpuSamples {
	c := &cpuSamples{}
	go func() {
		for {
			s, err := proc.CPUSeconds(pid)
			if err != nil { // exited (or reaped)
				return
			}
			c.mu.Lock()
			c.t, c.s = append(c.t, time.Now()), append(c.s, s)
			c.mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return c
}

// at is the CPU time of the first sample at or after end (the end of the
// load, before ghz builds its report), or the last sample if none is.
func (c *cpuSamples) at(end time.Time) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, t := range c.t {
		if !t.Before(end) {
			return c.s[i]
		}
	}
	if len(c.s) == 0 {
		return 0
	}
	return c.s[len(c.s)-1]
}
