package ipvsvm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrQEMUUnavailable is wrapped when qemu cannot be started or cannot
// start the guest (no binary, no usable accelerator). Callers skip on it.
var ErrQEMUUnavailable = errors.New("ipvsvm: qemu cannot start")

// ErrNoResult is wrapped when the guest stops or times out without
// printing the result marker.
var ErrNoResult = errors.New("ipvsvm: guest printed no result")

// BootOptions configure one qemu run.
type BootOptions struct {
	QEMU     string // default qemu-system-x86_64
	Vmlinux  string
	Initrd   string
	MemoryMB int // default 512
	// Accel is "tcg", "kvm" or "auto" (kvm when it starts the guest,
	// else tcg). The /dev/kvm of nested paravirtual hosts cannot run a
	// stock kernel; "auto" notices and falls back.
	Accel   string
	Append  string        // extra kernel command line
	Timeout time.Duration // whole run; default 3 minutes
	// StartTimeout is how long "auto" waits for the start marker under
	// kvm before falling back to tcg; default 15 s.
	StartTimeout time.Duration
	Console      io.Writer // receives every console line; may be nil
}

// Result is what the guest reported.
type Result struct {
	ExitCode int    // the command's exit status
	Accel    string // the accelerator that ran it
	Console  string // the whole serial console
	Elapsed  time.Duration
}

// ParseResultLine recognises init's result marker in a console line and
// returns the exit status it carries.
func ParseResultLine(line string) (int, bool) {
	i := strings.Index(line, ResultMarker)
	if i < 0 {
		return 0, false
	}
	rest := line[i+len(ResultMarker):]
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(rest[:end])
	if err != nil || n > 255 {
		return 0, false
	}
	return n, true
}

// Boot runs the guest and returns its result.
func Boot(ctx context.Context, o BootOptions) (*Result, error) {
	if o.QEMU == "" {
		o.QEMU = "qemu-system-x86_64"
	}
	if _, err := exec.LookPath(o.QEMU); err != nil {
		return nil, fmt.Errorf("%w: %v (install qemu-system-x86)", ErrQEMUUnavailable, err)
	}
	if o.MemoryMB == 0 {
		o.MemoryMB = 512
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Minute
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 15 * time.Second
	}
	switch o.Accel {
	case "", "auto":
		if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
			f.Close()
			r, err := boot(ctx, o, "kvm", o.StartTimeout)
			if err == nil || !errors.Is(err, ErrQEMUUnavailable) {
				return r, err
			}
		}
		return boot(ctx, o, "tcg", 0)
	case "tcg", "kvm":
		return boot(ctx, o, o.Accel, 0)
	}
	return nil, fmt.Errorf("ipvsvm: unknown accelerator %q", o.Accel)
}

// boot runs qemu once. With startTimeout > 0, a guest that has not printed
// the start marker by then counts as qemu being unable to start it.
func boot(ctx context.Context, o BootOptions, accel string, startTimeout time.Duration) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	cpu := "max"
	if accel == "kvm" {
		cpu = "host"
	}
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-accel", accel, "-cpu", cpu, "-m", strconv.Itoa(o.MemoryMB) + "M", "-smp", "1",
		"-kernel", o.Vmlinux, "-initrd", o.Initrd,
		"-append", strings.TrimSpace("console=ttyS0 panic=-1 quiet loglevel=3 " + o.Append),
	}
	cmd := exec.CommandContext(ctx, o.QEMU, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrQEMUUnavailable, err)
	}

	var (
		mu      sync.Mutex
		console strings.Builder
		started bool
		code    = -1
	)
	var watchdog *time.Timer
	startFailed := make(chan struct{})
	if startTimeout > 0 {
		watchdog = time.AfterFunc(startTimeout, func() {
			mu.Lock()
			defer mu.Unlock()
			if !started {
				close(startFailed)
				cancel()
			}
		})
		defer watchdog.Stop()
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		mu.Lock()
		console.WriteString(line)
		console.WriteByte('\n')
		if strings.Contains(line, StartMarker) {
			started = true
		}
		mu.Unlock()
		if o.Console != nil {
			fmt.Fprintln(o.Console, line)
		}
		if n, ok := ParseResultLine(line); ok {
			code = n
		}
	}
	waitErr := cmd.Wait()
	res := &Result{ExitCode: code, Accel: accel, Console: console.String(), Elapsed: time.Since(start)}
	select {
	case <-startFailed:
		return res, fmt.Errorf("%w: %s guest printed nothing in %v: %s", ErrQEMUUnavailable, accel, startTimeout, stderr.String())
	default:
	}
	if code >= 0 {
		return res, nil
	}
	if !started && (startTimeout > 0 || waitErr != nil && ctx.Err() == nil) {
		return res, fmt.Errorf("%w: %s: %v: %s", ErrQEMUUnavailable, accel, waitErr, stderr.String())
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("%w: timed out after %v (%s)", ErrNoResult, time.Since(start).Round(time.Second), accel)
	}
	return res, fmt.Errorf("%w: qemu exited (%v) %s", ErrNoResult, waitErr, stderr.String())
}
