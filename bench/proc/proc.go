// Package proc starts and watches the processes keygate's load harnesses
// run (bench/cmd/kgbench, bench/cmd/kgsoak): servers on random loopback
// ports, a Vault dev server, their CPU and memory from /proc, and the CPUs
// their threads may run on (Linux). Every started process is killed if the
// harness dies (Linux) and stopped with SIGTERM, then SIGKILL after 5 s.
package proc

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Proc is a process a harness started; it is killed if the harness dies.
type Proc struct {
	Name string
	Log  string // its stdout and stderr
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs bin with args and env (added to the harness's environment),
// writing its output to dir/name.log.
func Start(dir, name string, env []string, bin string, args ...string) (*Proc, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Stop sends SIGTERM and, after 5 s, SIGKILL; it waits for the exit.
func (p *Proc) Stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// WaitServing polls the gRPC health service at addr until it reports
// SERVING, for at most 30 s.
func WaitServing(ctx context.Context, p *Proc, addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client := healthpb.NewHealthClient(conn)
	for {
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("%s exited during start-up; see %s", p.Name, p.Log)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not serving on %s after 30s (last: %v); see %s", p.Name, addr, err, p.Log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Server is a started gRPC server (keygate or a floor) listening on Addr.
type Server struct {
	*Proc
	Addr string
}

// StartServer starts bin with args plus "<addrFlag> ADDR" on a free
// loopback port and waits until it serves.
func StartServer(ctx context.Context, dir, name string, env []string, bin, addrFlag string, args ...string) (*Server, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	p, err := Start(dir, name, env, bin, append(args, addrFlag, addr)...)
	if err != nil {
		return nil, err
	}
	if err := WaitServing(ctx, p, addr); err != nil {
		p.Stop()
		return nil, err
	}
	return &Server{Proc: p, Addr: addr}, nil
}
