package script

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Errors returned by Run, to be tested with errors.Is.
var (
	// ErrTimeout means the script outlived its timeout; its process group
	// was killed.
	ErrTimeout = errors.New("script: timed out")
	// ErrSignaled means the script was killed by a signal it did not get
	// from us (it has no exit code).
	ErrSignaled = errors.New("script: killed by signal")
	// ErrStart means the script could not be started (not found, not
	// executable, bad command line).
	ErrStart = errors.New("script: cannot start")
)

// DefaultTimeout is used when a Command has no Timeout.
const DefaultTimeout = 30 * time.Second

// outputLimit bounds the output kept for logs.
const outputLimit = 4096

// pipeGrace is how long Run waits for the script's stdout/stderr to close
// after the script exited or was killed; a background child that keeps
// them open does not hold the caller longer than that.
const pipeGrace = 100 * time.Millisecond

// Command is one script to run.
type Command struct {
	// Line is the command line, split with Split.
	Line string
	// Timeout bounds the run; 0 means DefaultTimeout.
	Timeout time.Duration
	// Credential, if set, runs the script as that user and group
	// (keepalived's `script [username [groupname]]`).
	Credential *syscall.Credential
	// Env, if not nil, is the script's environment instead of ours.
	Env []string
}

// Result is what a script that ran to completion returned.
type Result struct {
	// ExitCode is the exit status, 0..255.
	ExitCode int
	// Output is the start of the combined stdout and stderr (for logs).
	Output []byte
	// Duration is how long the script ran.
	Duration time.Duration
}

// IsOpenCheck reports whether a script line is keepalived's file-open
// check: it starts with '<', optional blanks, then '/'.
func IsOpenCheck(line string) bool {
	rest, ok := strings.CutPrefix(strings.TrimLeft(line, " \t"), "<")
	return ok && strings.HasPrefix(strings.TrimLeft(rest, " \t"), "/")
}

// Run runs c with extra appended to its argv and waits for it, at most
// c.Timeout. A non-zero exit code is not an error: err is nil and
// Result.ExitCode holds it. err wraps ErrTimeout when the timeout expired
// (the whole process group has then been killed with SIGKILL), ErrSignaled
// when something else killed the script, ErrStart when it could not be
// started, or ctx's error when ctx was cancelled first.
func Run(ctx context.Context, c Command, extra ...string) (Result, error) {
	argv, err := Split(c.Line)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrStart, err)
	}
	if IsOpenCheck(c.Line) {
		// keepalived runs "</path" (a check that the file opens, e.g.
		// </dev/tcp/127.0.0.1/80) with system(), i.e. through /bin/sh.
		argv = []string{"/bin/sh", "-c", c.Line}
	}
	argv = append(argv, extra...)
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.CommandContext(runCtx, argv[0], argv[1:]...)
	cmd.Env = c.Env
	out := &limitedBuffer{limit: outputLimit}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.Credential}
	cmd.Cancel = func() error {
		// Kill the whole group: the script and anything it forked.
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = pipeGrace

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("%w: %s: %w", ErrStart, argv[0], err)
	}
	waitErr := cmd.Wait()
	res := Result{Output: out.Bytes(), Duration: time.Since(start)}

	if ctxErr := runCtx.Err(); ctxErr != nil && ctx.Err() == nil {
		// Kill the group again: a child that left the script's wait can
		// still be running if the script exited just as we timed out.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return res, fmt.Errorf("%w after %v: %s", ErrTimeout, timeout, c.Line)
	}
	if ctx.Err() != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return res, ctx.Err()
	}
	st := cmd.ProcessState
	if st == nil {
		return res, fmt.Errorf("%w: %s: %w", ErrStart, argv[0], waitErr)
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return res, fmt.Errorf("%w %v: %s", ErrSignaled, ws.Signal(), c.Line)
	}
	// waitErr may be an *exec.ExitError (non-zero exit, not an error for
	// us) or exec.ErrWaitDelay (a background child kept the output open).
	res.ExitCode = st.ExitCode()
	return res, nil
}

// limitedBuffer keeps the first limit bytes written to it and discards
// the rest; it is safe for the two copying goroutines of os/exec.
type limitedBuffer struct {
	mu    sync.Mutex
	limit int
	buf   bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.limit - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
