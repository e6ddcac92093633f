package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/xdpvip/xdpvip/internal/netlab"
)

// metric is one of the three instants measured from the failure.
type metric int

const (
	metricMaster metric = iota // the VIP appears on lb2's interface
	metricNeigh                // the client's neighbour entry for the VIP holds lb2's MAC
	metricTCP                  // the first TCP answer from lb2 reaches the client
	numMetrics
)

func (m metric) String() string {
	switch m {
	case metricMaster:
		return "new MASTER (VIP on lb2)"
	case metricNeigh:
		return "client neighbour -> lb2 MAC"
	case metricTCP:
		return "first TCP answer from lb2"
	}
	return fmt.Sprintf("metric(%d)", int(m))
}

// observer records, for one run, the first instant each metric is met
// after the failure. Watchers call mark from any goroutine; marks before
// arm or after disarm are ignored.
type observer struct {
	mu    sync.Mutex
	armed bool
	t0    time.Time
	at    [numMetrics]time.Time
	done  chan struct{} // closed when every metric is marked
}

// arm starts a run: t0 is the failure instant.
func (o *observer) arm(t0 time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.armed, o.t0, o.at, o.done = true, t0, [numMetrics]time.Time{}, make(chan struct{})
}

// mark records m at t if it is the first mark of m since arm.
func (o *observer) mark(m metric, t time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.armed || t.Before(o.t0) || !o.at[m].IsZero() {
		return
	}
	o.at[m] = t
	for _, a := range o.at {
		if a.IsZero() {
			return
		}
	}
	close(o.done)
}

// wait waits until every metric is marked or the deadline passes, then
// disarms and returns each metric's delay from t0 (-1 if never met).
func (o *observer) wait(deadline time.Time) [numMetrics]time.Duration {
	o.mu.Lock()
	done := o.done
	o.mu.Unlock()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.armed = false
	var out [numMetrics]time.Duration
	for i, a := range o.at {
		out[i] = -1
		if !a.IsZero() {
			out[i] = a.Sub(o.t0)
		}
	}
	return out
}

// startResponder listens on 0.0.0.0:port in h's namespace and answers
// every connection with h's name and a newline. It answers on the VIP
// exactly while the VIP is on h's interface. Closing ctx stops it.
func startResponder(ctx context.Context, h *host, port int) error {
	var ln net.Listener
	err := h.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", port))
		return err
	})
	if err != nil {
		return fmt.Errorf("responder in %s: %w", h.NS(), err)
	}
	go func() { <-ctx.Done(); ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(h.Name() + "\n"))
			c.Close()
		}
	}()
	return nil
}

// prober connects to the VIP from the client's namespace every interval,
// each attempt with a short timeout, several in flight at once so a lost
// SYN never hides the moment the path comes back.
type prober struct {
	target   netip.AddrPort
	interval time.Duration
	timeout  time.Duration
	workers  int

	mu   sync.Mutex
	last map[string]time.Time // node name -> last answer
	// onAnswer is called with every answer (node name, arrival time).
	onAnswer func(name string, at time.Time)
}

// run starts the workers in h's namespace; they stop when ctx ends.
func (p *prober) run(ctx context.Context, h *host) error {
	ticks := make(chan struct{})
	errc := make(chan error, p.workers)
	for range p.workers {
		go func() {
			// The goroutine stays locked in the namespace until it ends;
			// the runtime then discards its thread.
			if err := h.Enter(); err != nil {
				errc <- err
				return
			}
			errc <- nil
			for {
				select {
				case <-ctx.Done():
					return
				case <-ticks:
					p.probe(ctx)
				}
			}
		}()
	}
	for range p.workers {
		if err := <-errc; err != nil {
			return fmt.Errorf("prober: %w", err)
		}
	}
	go func() {
		t := time.NewTicker(p.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				select {
				case ticks <- struct{}{}: // a free worker takes it
				default: // all busy: skip this tick
				}
			}
		}
	}()
	return nil
}

// probe makes one connection and records who answered.
func (p *prober) probe(ctx context.Context) {
	d := net.Dialer{Timeout: p.timeout}
	c, err := d.DialContext(ctx, "tcp4", p.target.String())
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(p.timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	at := time.Now()
	name := strings.TrimSpace(line)
	p.mu.Lock()
	p.last[name] = at
	p.mu.Unlock()
	if p.onAnswer != nil {
		p.onAnswer(name, at)
	}
}

// lastAnswer is when name last answered (zero if never).
func (p *prober) lastAnswer(name string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last[name]
}

// watchAddr marks metricMaster when vip is added to h's interface: from
// netlink address notifications, and from a poll every pollEvery in case
// a notification is lost.
func watchAddr(ctx context.Context, h *host, vip netip.Addr, pollEvery time.Duration, o *observer) error {
	ns, err := netns.GetFromName(h.NS())
	if err != nil {
		return err
	}
	defer ns.Close()
	updates := make(chan netlink.AddrUpdate, 64)
	if err := netlink.AddrSubscribeWithOptions(updates, ctx.Done(), netlink.AddrSubscribeOptions{
		Namespace: &ns, ReceiveBufferSize: 1 << 20,
	}); err != nil {
		return fmt.Errorf("address notifications in %s: %w", h.NS(), err)
	}
	go func() {
		for u := range updates {
			ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
			if u.NewAddr && ok && ip.Unmap() == vip {
				o.mark(metricMaster, time.Now())
			}
		}
	}()
	nh, err := h.Handle()
	if err != nil {
		return err
	}
	go func() {
		defer nh.Close()
		poll(ctx, pollEvery, func() {
			if ok, err := h.HasAddr(nh, vip); err == nil && ok {
				o.mark(metricMaster, time.Now())
			}
		})
	}()
	return nil
}

// watchNeigh marks metricNeigh when h's neighbour entry for vip holds mac:
// from netlink neighbour notifications, and from a poll every pollEvery.
func watchNeigh(ctx context.Context, h *host, vip netip.Addr, mac net.HardwareAddr, pollEvery time.Duration, o *observer) error {
	ns, err := netns.GetFromName(h.NS())
	if err != nil {
		return err
	}
	defer ns.Close()
	updates := make(chan netlink.NeighUpdate, 64)
	if err := netlink.NeighSubscribeWithOptions(updates, ctx.Done(), netlink.NeighSubscribeOptions{
		Namespace: &ns, ReceiveBufferSize: 1 << 20,
	}); err != nil {
		return fmt.Errorf("neighbour notifications in %s: %w", h.NS(), err)
	}
	go func() {
		for u := range updates {
			ip, ok := netip.AddrFromSlice(u.IP)
			if u.Type == unix.RTM_NEWNEIGH && ok && ip.Unmap() == vip && (netlab.Neighbor{MAC: u.HardwareAddr, State: u.State}).Usable() && bytes.Equal(u.HardwareAddr, mac) {
				o.mark(metricNeigh, time.Now())
			}
		}
	}()
	nh, err := h.Handle()
	if err != nil {
		return err
	}
	l, err := nh.LinkByName(hostIface)
	if err != nil {
		nh.Close()
		return err
	}
	go func() {
		defer nh.Close()
		poll(ctx, pollEvery, func() {
			if nb, err := netlab.NeighOn(nh, l.Attrs().Index, vip); err == nil && nb.Usable() && bytes.Equal(nb.MAC, mac) {
				o.mark(metricNeigh, time.Now())
			}
		})
	}()
	return nil
}

// poll calls f every interval until ctx ends.
func poll(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// waitFor polls cond until it returns nil or timeout passes, and returns
// cond's last error. The poll interval grows from 1 ms to 20 ms. A
// context.Canceled error from cond (an interrupt) ends it at once.
func waitFor(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		err := cond()
		if err == nil || errors.Is(err, context.Canceled) {
			return err
		}
		if time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		<-t.C
		if wait < 20*time.Millisecond {
			wait *= 2
		}
	}
}

// stallMeter measures the longest stretch the measuring process went
// without running during a run: the largest gap between wakeups of a
// 1 ms ticker. A stall delays every mark taken in it, so a run with a
// long stall measures the benchmark's host, not the daemon.
type stallMeter struct {
	stop chan struct{}
	max  chan time.Duration
}

func startStallMeter(tick time.Duration) *stallMeter {
	s := &stallMeter{stop: make(chan struct{}), max: make(chan time.Duration, 1)}
	go func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		last := time.Now()
		var worst time.Duration
		for {
			select {
			case <-s.stop:
				worst = max(worst, time.Since(last)-tick)
				s.max <- worst
				return
			case now := <-t.C:
				woke := time.Now()
				worst = max(worst, lateness(last, now, woke, tick))
				last = woke
			}
		}
	}()
	return s
}

// lateness is how long a ticker's receiver went without running: it woke
// at woke for a tick due at due, having last woken at prev. It is the
// larger of the delay past the due time and the gap between wakeups
// beyond one tick (the ticker drops ticks a slow receiver misses).
func lateness(prev, due, woke time.Time, tick time.Duration) time.Duration {
	return max(woke.Sub(prev)-tick, woke.Sub(due), 0)
}

// Stop ends the measurement and returns the longest stall seen.
func (s *stallMeter) Stop() time.Duration {
	close(s.stop)
	return <-s.max
}
