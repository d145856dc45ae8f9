package rltest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// process is one child process: started with its output appended to a
// log, watched, and killed (also when the test process dies, see
// sysProcAttr).
type process struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// start runs bin with args and env in dir, output appended to logPath, and
// returns a channel closed when it exits.
func (p *process) start(bin string, args, env []string, dir, logPath string) (<-chan struct{}, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	return done, nil
}

// kill stops the process abruptly (SIGKILL) and waits for it to exit.
func (p *process) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// signal sends sig to the process, if it runs.
func (p *process) signal(sig os.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil {
		return errors.New("not started")
	}
	return cmd.Process.Signal(sig)
}

// pid is the process's id, or 0 before start.
func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// binary finds a program: $envVar, else <repo>/.tools/name (linked by
// scripts/ratelimit.sh). Without it t is skipped, or failed when $CI is
// set.
func binary(t testing.TB, name, envVar string) string {
	t.Helper()
	bin, err := findBinary(name, envVar)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("rltest: %v (CI is set, so this fails instead of skipping)", err)
		}
		t.Skipf("rltest: %v", err)
	}
	return bin
}

func findBinary(name, envVar string) (string, error) {
	if bin := os.Getenv(envVar); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%s: %w (install one with scripts/ratelimit.sh)", envVar, err)
		}
		return bin, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, ".tools", name)
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("no %s at %s: run scripts/ratelimit.sh (or set %s)", name, bin, envVar)
	}
	return bin, nil
}

// repoRoot walks up from the working directory to the directory with go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// freePorts returns n loopback ports that were free a moment ago.
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

// errPortTaken: a port chosen as free was taken before the child bound it.
var errPortTaken = errors.New("port already in use")

// logTail is the last n lines of the file at path.
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 16<<20))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// childEnv is the parent's environment without settings the children
// read (the ratelimit service reads dozens of variables by bare names
// such as PORT or HOST), plus env.
func childEnv(env ...string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	return append(out, env...)
}
