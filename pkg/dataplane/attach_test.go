package dataplane

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// testBPFDir is a per-test pin directory under /sys/fs/bpf, removed at cleanup.
func testBPFDir(t *testing.T) string {
	t.Helper()
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("/sys/fs/bpf", "xdpvip-test-"+hex.EncodeToString(rnd[:]))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func openIn(t *testing.T, h *testnet.Host, opts Options) *Dataplane {
	t.Helper()
	var d *Dataplane
	h.MustDo(func() error {
		var err error
		d, err = Open(opts)
		return err
	})
	return d
}

func TestAttachPinReuseDetach(t *testing.T) {
	requireBPF(t)
	if _, err := exec.LookPath("bpftool"); err != nil {
		t.Skip("needs bpftool to check the pinned maps")
	}
	n := testnet.New(t)
	lb := n.AddHost("lb", "192.0.2.1/24")
	dir := testBPFDir(t)
	opts := Options{Iface: lb.Iface(), BPFDir: dir}

	d := openIn(t, lb, opts)
	if err := d.ConfigureVRID(51, VRIDConfig{Version: 3, Family: 4}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetVIPActive(vip4, true); err != nil {
		t.Fatal(err)
	}
	out := lb.MustExec("ip", "-d", "link", "show", lb.Iface())
	if !strings.Contains(string(out), "xdp") {
		t.Fatalf("no XDP program on %s after Open:\n%s", lb.Iface(), out)
	}
	pins := filepath.Join(dir, lb.Iface())
	for _, name := range []string{"link", "counters", "vrid_config", "vrrp_peer_state", "vrrp_events", "services", "maglev_tables", "reals", "real_stats", "flows", "persist", "vip_state", "vip_filter", "iface", "vrrp_peers"} {
		if _, err := os.Stat(filepath.Join(pins, name)); err != nil {
			t.Errorf("pin %s missing: %v", name, err)
		}
	}
	dump, err := exec.Command("bpftool", "map", "dump", "pinned", filepath.Join(pins, "vrid_config")).CombinedOutput()
	if err != nil {
		t.Fatalf("bpftool: %v\n%s", err, dump)
	}
	for _, field := range []string{`"vrid": 51`, `"family": 4`, `"version": 3`, `"any_peer": 1`} {
		if !strings.Contains(string(dump), field) {
			t.Errorf("bpftool dump of vrid_config lacks %s:\n%s", field, dump)
		}
	}
	dump, err = exec.Command("bpftool", "map", "dump", "pinned", filepath.Join(pins, "iface")).CombinedOutput()
	if err != nil || !strings.Contains(string(dump), `"ifindex": `) || !strings.Contains(string(dump), `"mac": [`) {
		t.Errorf("bpftool dump of iface lacks named fields (%v):\n%.400s", err, dump)
	}
	linkInfo := func(d *Dataplane) link.ID {
		info, err := d.link.Info()
		if err != nil {
			t.Fatal(err)
		}
		return info.ID
	}
	firstLink := linkInfo(d)
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	out = lb.MustExec("ip", "-d", "link", "show", lb.Iface())
	if !strings.Contains(string(out), "xdp") {
		t.Fatalf("XDP program gone after Close (it must survive a daemon restart):\n%s", out)
	}

	// A second Open reuses link and maps: the configuration is still there.
	d2 := openIn(t, lb, opts)
	defer d2.Close()
	if got := linkInfo(d2); got != firstLink {
		t.Errorf("second Open made link %d, want the pinned link %d", got, firstLink)
	}
	var cfg xdpvipVridCfg
	if err := d2.objs.VridConfig.Lookup(&xdpvipVridKey{Vrid: 51, Family: 4}, &cfg); err != nil || cfg.Version != 3 {
		t.Errorf("vrid 51 config after reopen: %+v, %v", cfg, err)
	}
	var active uint8
	if err := d2.objs.VipState.Lookup(&xdpvipVipKey{Addr: addr16(vip4), Family: 4}, &active); err != nil || active != 1 {
		t.Errorf("VIP state after reopen: %d, %v", active, err)
	}
	d2.Close()

	if err := Detach(dir, lb.Iface()); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	out = lb.MustExec("ip", "-d", "link", "show", lb.Iface())
	if strings.Contains(string(out), "prog/xdp") {
		t.Errorf("XDP program still attached after Detach:\n%s", out)
	}
	if _, err := os.Stat(pins); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin dir %s still there after Detach: %v", pins, err)
	}
	if err := Detach(dir, lb.Iface()); !errors.Is(err, ErrNotAttached) {
		t.Errorf("second Detach = %v, want ErrNotAttached", err)
	}
}

// TestAdvertOverTheWire sends a real VRRP advert from a peer namespace and
// reads it from the ring buffer of the program attached to the LB.
func TestAdvertOverTheWire(t *testing.T) {
	requireBPF(t)
	n := testnet.New(t)
	lb := n.AddHost("lb", "192.0.2.1/24")
	peer := n.AddHost("peer", "192.0.2.2/24")
	d := openIn(t, lb, Options{Iface: lb.Iface(), BPFDir: testBPFDir(t)})
	t.Cleanup(func() { d.Close(); Detach(filepath.Dir(d.pinDir), lb.Iface()) })
	if err := d.ConfigureVRID(51, VRIDConfig{Version: 3, Family: 4}); err != nil {
		t.Fatal(err)
	}
	adv := v3adv(51, vip4)
	msg, err := adv.Marshal(peer.Addr(4), vrrpGroup4())
	if err != nil {
		t.Fatal(err)
	}
	peer.MustDo(func() error { return sendVRRP4(peer.Addr(4), msg) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := d.ReadAdvert(ctx)
	if err != nil {
		t.Fatalf("ReadAdvert: %v", err)
	}
	if ev.VRID != 51 || ev.Src != peer.Addr(4) || ev.Priority != 100 {
		t.Errorf("event %+v, want VRID 51 from %v priority 100", ev, peer.Addr(4))
	}
	p, ok, err := d.Peer(51, 4)
	if err != nil || !ok || p.Src != peer.Addr(4) || p.Count != 1 {
		t.Errorf("peer state %+v ok=%v err=%v", p, ok, err)
	}
}

// TestOldLayoutPinsAreReplaced: maps pinned by an xdpvip of another map
// layout (here a reals map with a shorter value, as before the TUN
// fields) do not stop the load: every map pin is replaced with one of
// the program's layout, and the load names the one that differed.
func TestOldLayoutPinsAreReplaced(t *testing.T) {
	requireBPF(t)
	dir := testBPFDir(t)
	if err := ensureBPFFS(dir); err != nil {
		t.Fatal(err)
	}
	spec, err := loadXdpvip()
	if err != nil {
		t.Fatal(err)
	}
	pin := func(name string, ms *ebpf.MapSpec) {
		t.Helper()
		ms = ms.Copy()
		ms.Pinning = ebpf.PinNone
		m, err := ebpf.NewMap(ms)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := m.Pin(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	old := spec.Maps[xdpvipMapReals].Copy()
	old.ValueSize = 36
	old.Key, old.Value = nil, nil // no BTF: the old layout's types are gone
	pin(xdpvipMapReals, old)
	pin(xdpvipMapFlows, spec.Maps[xdpvipMapFlows]) // compatible, replaced too
	var logs bytes.Buffer
	d, err := load(loadOptions{pinDir: dir, logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("load with old pins: %v", err)
	}
	defer d.Close()
	if got := d.objs.Reals.ValueSize(); got != spec.Maps[xdpvipMapReals].ValueSize {
		t.Errorf("reals value size %d after the load, want the program's %d", got, spec.Maps[xdpvipMapReals].ValueSize)
	}
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, xdpvipMapReals), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := spec.Maps[xdpvipMapReals].Compatible(m); err != nil {
		t.Errorf("pinned reals after the load: %v", err)
	}
	if !strings.Contains(logs.String(), "incompatible=[reals]") {
		t.Errorf("log does not name the incompatible map:\n%s", logs.String())
	}
	// The next load finds matching pins and reuses them quietly.
	logs.Reset()
	d2, err := load(loadOptions{pinDir: dir, logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("second load: %v", err)
	}
	d2.Close()
	if strings.Contains(logs.String(), "replaced") {
		t.Errorf("second load replaced pins again:\n%s", logs.String())
	}
}
