package netlab

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Command is name run inside the host's namespace through nsenter (which
// execs it, so the pid is the program's own and signals reach it), as the
// leader of its own process group. No Pdeathsig: the kernel fires it when
// the *thread* that forked the child exits, and Do throws threads away,
// so a later Do could kill the process; callers that want it set it.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("nsenter", append([]string{"--net=/var/run/netns/" + h.ns, "--", name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// Process is a program started in a host's namespace.
type Process struct {
	Cmd     *exec.Cmd
	LogPath string // stdout and stderr of the process

	done chan struct{}
	err  error
}

// Start runs name in the host's namespace in the background (Command),
// its stdout and stderr appended to logPath.
func (h *Host) Start(logPath, name string, args ...string) (*Process, error) {
	return StartCommand(h.Command(name, args...), logPath)
}

// StartCommand starts cmd with its stdout and stderr appended to logPath.
func StartCommand(cmd *exec.Cmd, logPath string) (*Process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("netlab: log of %s: %w", cmd.Path, err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("netlab: start %s: %w", strings.Join(cmd.Args, " "), err)
	}
	p := &Process{Cmd: cmd, LogPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Wait waits for the process to exit and returns its exit error.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// SignalGroup sends sig to the process's whole group (its children too,
// as a terminal's ^C does).
func (p *Process) SignalGroup(sig syscall.Signal) error {
	return syscall.Kill(-p.Cmd.Process.Pid, sig)
}

// Kill kills the process group with SIGKILL and waits for the process.
func (p *Process) Kill() {
	if !p.Exited() {
		_ = p.SignalGroup(syscall.SIGKILL)
	}
	<-p.done
}

// Stop sends SIGTERM and waits up to timeout, then kills the group; it
// always kills what is left of the group (children that outlived their
// parent).
func (p *Process) Stop(timeout time.Duration) {
	if !p.Exited() {
		_ = p.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(timeout):
		}
	}
	_ = p.SignalGroup(syscall.SIGKILL)
	<-p.done
}

// Log returns what the process wrote so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// LogTail returns the last lines of the log, for error messages.
func (p *Process) LogTail(lines int) string {
	all := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// PIDAlive reports whether pid runs (a zombie does not count: it does
// nothing any more).
func PIDAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

// Poll calls f until it returns nil or timeout passes and returns f's last
// error (nil on success). It polls with a short back-off, not a fixed sleep.
func Poll(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}
