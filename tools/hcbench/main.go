// Command hcbench measures what N TCP_CHECK monitors at delay_loop 1 s cost:
// checks per second, CPU time (user+sys, as % of one core) and peak RSS of
// the checking process, against a baseline measured in the same run: the
// same process idle for the same time while the listeners are open.
//
// The N loopback listeners live in a child process (this binary re-run
// with -serve) so that accepting connections is not counted as checking
// cost.
//
// With -daemon PATH, a third phase runs the xdpvip daemon itself
// (--dataplane none) with a generated keepalived.conf holding one virtual
// server and the N real servers with TCP_CHECK, and measures the daemon's
// CPU time and peak RSS (VmHWM) from /proc the same way, so the library
// figures and the daemon's are side by side in one run.
//
//	go run ./tools/hcbench -n 5000 -d 20s [-daemon bin/xdpvip]
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xdpvip/xdpvip/pkg/healthcheck"
)

func main() {
	n := flag.Int("n", 5000, "number of real servers (listeners and monitors)")
	d := flag.Duration("d", 20*time.Second, "measuring time of each phase")
	delay := flag.Duration("delay-loop", time.Second, "delay_loop of every monitor")
	serve := flag.Bool("serve", false, "internal: run the listeners and print their ports")
	daemonBin := flag.String("daemon", "", "also measure this xdpvip binary running the same checks")
	flag.Parse()
	if err := raiseNofile(uint64(*n)*2 + 1024); err != nil {
		fmt.Fprintln(os.Stderr, "hcbench: raising RLIMIT_NOFILE:", err)
		os.Exit(1)
	}
	var err error
	if *serve {
		err = runListeners(*n)
	} else {
		err = run(*n, *d, *delay, *daemonBin)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hcbench:", err)
		os.Exit(1)
	}
}

func raiseNofile(want uint64) error {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return err
	}
	if r.Cur >= want {
		return nil
	}
	r.Cur = want
	if r.Max < want {
		r.Max = want // needs CAP_SYS_RESOURCE
	}
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
}

// runListeners opens n listeners on 127.0.0.1, prints one port per line,
// then "ready", and accepts and closes connections until stdin closes.
func runListeners(n int) error {
	w := bufio.NewWriter(os.Stdout)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		fmt.Fprintln(w, ln.Addr().(*net.TCPAddr).Port)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	fmt.Fprintln(w, "ready")
	if err := w.Flush(); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// usage is a snapshot of this process's resource usage.
type usage struct {
	at     time.Time
	cpu    time.Duration
	maxRSS int64 // KiB
}

func snapshot() usage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return usage{
		at:     time.Now(),
		cpu:    time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		maxRSS: ru.Maxrss,
	}
}

// phase is one measured interval.
type phase struct {
	name       string
	checks     int64
	failed     int64
	wall, cpu  time.Duration
	peakRSSKiB int64
	goroutines int
}

func (p phase) cpuPct() float64 { return 100 * p.cpu.Seconds() / p.wall.Seconds() }
func (p phase) rate() float64   { return float64(p.checks) / p.wall.Seconds() }

// countingCheck counts checks and failures.
type countingCheck struct {
	c              healthcheck.Checker
	checks, failed *atomic.Int64
}

func (c countingCheck) Check(ctx context.Context) error {
	err := c.c.Check(ctx)
	c.checks.Add(1)
	if err != nil {
		c.failed.Add(1)
	}
	return err
}

func run(n int, d, delay time.Duration, daemonBin string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.Command(self, "-serve", "-n", strconv.Itoa(n))
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { stdin.Close(); _ = child.Wait() }()
	var ports []uint16
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "ready" {
			break
		}
		p, err := strconv.Atoi(line)
		if err != nil {
			return fmt.Errorf("listener child said %q", line)
		}
		ports = append(ports, uint16(p))
	}
	if len(ports) != n {
		return fmt.Errorf("listener child opened %d of %d listeners", len(ports), n)
	}
	fmt.Printf("hcbench: %d TCP_CHECK targets on 127.0.0.1, delay_loop %v, %v per phase, GOMAXPROCS %d\n",
		n, delay, d, runtime.GOMAXPROCS(0))

	// Baseline: this process, idle, listeners open in the child.
	runtime.GC()
	b0 := snapshot()
	time.Sleep(d)
	b1 := snapshot()
	base := phase{name: "baseline (idle, listeners open)", wall: b1.at.Sub(b0.at), cpu: b1.cpu - b0.cpu,
		peakRSSKiB: b1.maxRSS, goroutines: runtime.NumGoroutine()}

	// Monitors.
	var checks, failed, events atomic.Int64
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	lo := netip.MustParseAddr("127.0.0.1")
	monitors := make([]*healthcheck.Monitor, 0, n)
	for i, p := range ports {
		tc, err := healthcheck.NewTCPCheck(healthcheck.TCPSpec{Target: healthcheck.Target{Addr: netip.AddrPortFrom(lo, p)}})
		if err != nil {
			return err
		}
		m, err := healthcheck.NewMonitor(healthcheck.MonitorConfig{
			VirtualServer: "10.0.0.100:80", RealServer: fmt.Sprintf("rs%d", i), Weight: 1,
			Checkers: []healthcheck.CheckerConfig{{
				Name:    "TCP_CHECK",
				Checker: countingCheck{c: tc, checks: &checks, failed: &failed},
				Timing: healthcheck.Timing{DelayLoop: delay, Retry: 1, DelayBeforeRetry: time.Second,
					ConnectTimeout: 3 * time.Second, Warmup: delay},
			}},
			OnChange: func(healthcheck.Event) { events.Add(1) },
			Logger:   log,
		})
		if err != nil {
			return err
		}
		monitors = append(monitors, m)
	}
	for _, m := range monitors {
		m.Start()
	}
	time.Sleep(delay + time.Second) // past warmup: every monitor is on its loop
	c0, f0 := checks.Load(), failed.Load()
	m0 := snapshot()
	time.Sleep(d)
	m1 := snapshot()
	mon := phase{name: fmt.Sprintf("%d TCP_CHECK monitors", n), checks: checks.Load() - c0, failed: failed.Load() - f0,
		wall: m1.at.Sub(m0.at), cpu: m1.cpu - m0.cpu, peakRSSKiB: m1.maxRSS, goroutines: runtime.NumGoroutine()}
	for _, m := range monitors {
		m.Stop()
	}

	for _, p := range []phase{base, mon} {
		fmt.Printf("%-34s checks/s %8.1f  failed %d  CPU %6.2f%% of one core  peak RSS %6.1f MiB  goroutines %d\n",
			p.name, p.rate(), p.failed, p.cpuPct(), float64(p.peakRSSKiB)/1024, p.goroutines)
	}
	fmt.Printf("monitors vs baseline: CPU +%.2f%% of a core (%.1f us per check), peak RSS x%.2f (+%.1f MiB, %.1f KiB per monitor); expected checks/s %d, got %.1f; transitions %d\n",
		mon.cpuPct()-base.cpuPct(), float64((mon.cpu-base.cpu*mon.wall/base.wall).Microseconds())/float64(max(mon.checks, 1)),
		float64(mon.peakRSSKiB)/float64(base.peakRSSKiB), float64(mon.peakRSSKiB-base.peakRSSKiB)/1024, float64(mon.peakRSSKiB-base.peakRSSKiB)/float64(n),
		int(float64(n)/delay.Seconds()), mon.rate(), events.Load())
	if daemonBin == "" {
		return nil
	}
	dp, err := measureDaemon(daemonBin, ports, d, delay)
	if err != nil {
		return fmt.Errorf("daemon phase: %w", err)
	}
	fmt.Printf("%-34s checks/s %8s  up %d/%d  CPU %6.2f%% of one core  peak RSS %6.1f MiB\n",
		dp.name, "-", dp.checks, n, dp.cpuPct(), float64(dp.peakRSSKiB)/1024)
	fmt.Printf("daemon vs in-process monitors: CPU x%.2f, peak RSS x%.2f\n",
		dp.cpuPct()/mon.cpuPct(), float64(dp.peakRSSKiB)/float64(mon.peakRSSKiB))
	return nil
}

// measureDaemon runs `xdpvip run --dataplane none` with a virtual server of
// one TCP_CHECK real server per port and measures it from /proc.
func measureDaemon(bin string, ports []uint16, d, delay time.Duration) (phase, error) {
	dir, err := os.MkdirTemp("", "hcbench-")
	if err != nil {
		return phase{}, err
	}
	defer os.RemoveAll(dir)
	var b strings.Builder
	fmt.Fprintf(&b, "virtual_server 192.0.2.1 80 {\n    delay_loop %g\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n", delay.Seconds())
	for _, p := range ports {
		fmt.Fprintf(&b, "    real_server 127.0.0.1 %d {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 3\n            retry 1\n            delay_before_retry 1\n        }\n    }\n", p)
	}
	b.WriteString("}\n")
	conf, sock := dir+"/keepalived.conf", dir+"/xdpvip.sock"
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return phase{}, err
	}
	cmd := exec.Command(bin, "run", "-f", conf, "--control-socket", sock, "--dataplane", "none", "--log-level", "error")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return phase{}, err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	up := func() (int, error) {
		out, err := exec.Command(bin, "lvs", "--json", "--control-socket", sock).Output()
		if err != nil {
			return 0, err
		}
		return strings.Count(string(out), `"up": true`) + strings.Count(string(out), `"up":true`), nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := up(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return phase{}, fmt.Errorf("the daemon did not answer")
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(delay + 2*time.Second) // past warmup
	c0, t0 := procCPU(pid), time.Now()
	time.Sleep(d)
	c1, t1 := procCPU(pid), time.Now()
	n, err := up()
	if err != nil {
		return phase{}, err
	}
	return phase{name: "xdpvip daemon, same checks", checks: int64(n), wall: t1.Sub(t0), cpu: c1 - c0, peakRSSKiB: procHWM(pid)}, nil
}

// procCPU is a process's user+sys time from /proc/PID/stat.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// procHWM is a process's peak RSS (VmHWM) in KiB.
func procHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			v, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return v
		}
	}
	return 0
}
