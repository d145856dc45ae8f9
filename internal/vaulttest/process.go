package vaulttest

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
)

// process is one Vault server process, shared by the dev Server and the
// cluster nodes: started with its output appended to a log, watched, and
// killed (also when the test process dies, see sysProcAttr).
type process struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// start runs bin with args in dir (its HOME too), output to logFile, and
// returns a channel closed when it exits.
func (p *process) start(bin string, args []string, dir string, logFile *os.File) (<-chan struct{}, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = childEnv(dir)
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

// exited is closed once the current process has exited (nil: never started).
func (p *process) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

func (p *process) running() bool {
	done := p.exited()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
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
