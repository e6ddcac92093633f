package daemon

import (
	"fmt"
	"log/slog"

	"github.com/xdpvip/xdpvip/internal/announce"
	"github.com/xdpvip/xdpvip/internal/xdpplane"
	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/dataplane"
	"github.com/xdpvip/xdpvip/pkg/ipvs"
	"github.com/xdpvip/xdpvip/pkg/lvs"
	"github.com/xdpvip/xdpvip/pkg/netif"
	"github.com/xdpvip/xdpvip/pkg/vrrp/instance"
)

// planes is the daemon's dataplane: the XDP program on each VRRP interface
// (adverts in, VIP traffic forwarded), kernel IPVS, or nothing (adverts on a
// raw socket, virtual servers tracked but not forwarded).
type planes struct {
	kind  string // "xdp", "ipvs" or "none"
	log   *slog.Logger
	xdp   map[string]*xdpplane.Plane // by interface
	ipvs  *ipvs.Backend
	vmacs *netif.VMACs
}

// openPlanes picks and opens the dataplane opts.Dataplane asks for.
func openPlanes(opts Options, cfg *config.Config, log *slog.Logger) (*planes, error) {
	p := &planes{log: log, xdp: map[string]*xdpplane.Plane{}, vmacs: netif.NewVMACs(nil)}
	mode := opts.Dataplane
	if mode == "" {
		mode = "auto"
	}
	switch mode {
	case "none":
		p.kind = "none"
		return p, nil
	case "ipvs":
		b, err := ipvs.New()
		if err != nil {
			return nil, fmt.Errorf("--dataplane ipvs: %w", err)
		}
		p.kind, p.ipvs = "ipvs", b
		return p, nil
	case "xdp", "auto":
	default:
		return nil, fmt.Errorf("--dataplane %q: want auto, xdp, ipvs or none", mode)
	}
	err := p.openXDP(opts, cfg)
	if err == nil {
		p.kind = "xdp"
		return p, nil
	}
	p.closeXDP()
	if mode == "xdp" {
		return nil, fmt.Errorf("--dataplane xdp: %w", err)
	}
	log.Warn("XDP dataplane unavailable, trying kernel IPVS", "err", err)
	if aerr := ipvs.Available(); aerr == nil {
		if b, berr := ipvs.New(); berr == nil {
			p.kind, p.ipvs = "ipvs", b
			return p, nil
		}
	}
	log.Warn("kernel IPVS unavailable: adverts on raw sockets, virtual servers checked but not forwarded")
	p.kind = "none"
	return p, nil
}

func (p *planes) openXDP(opts Options, cfg *config.Config) error {
	ifaces := make([]string, 0, len(cfg.Instances)+1)
	for _, ic := range cfg.Instances {
		ifaces = append(ifaces, ic.Interface)
	}
	ifaces = append(ifaces, announce.Interfaces(cfg, p.log)...)
	for _, iface := range ifaces {
		if _, ok := p.xdp[iface]; ok {
			continue
		}
		xp, err := xdpplane.Open(dataplane.Options{Iface: iface, BPFDir: opts.BPFDir, Mode: opts.XDPMode, Logger: p.log})
		if err != nil {
			return fmt.Errorf("interface %s: %w", iface, err)
		}
		p.xdp[iface] = xp
	}
	return nil
}

// reopen loads the XDP program again on a re-created interface (nothing
// to do without XDP there).
func (p *planes) reopen(iface string, services []lvs.Service) error {
	if xp := p.xdp[iface]; xp != nil {
		return xp.Reopen(services)
	}
	return nil
}

func (p *planes) closeXDP() {
	for name, xp := range p.xdp {
		_ = xp.Close()
		delete(p.xdp, name)
	}
}

// Close releases the handles. The XDP program and its pinned maps stay,
// so VIP traffic keeps flowing while the daemon restarts.
func (p *planes) Close() {
	p.closeXDP()
	if p.ipvs != nil {
		_ = p.ipvs.Close()
	}
}

func (p *planes) name() string { return p.kind }

// receivePath is where an instance's adverts come from and the dataplane
// side it drives.
type receivePath struct {
	name string // "xdp" (the program's ring buffer) or "socket"
	role instance.Role
	peer instance.PeerSeen
}

// receivePath says where ic's adverts will come from; it changes nothing.
func (p *planes) receivePath(ic *config.VRRPInstance) receivePath {
	xp := p.xdp[ic.Interface]
	if xp == nil {
		return receivePath{name: "socket"}
	}
	return receivePath{name: "xdp", role: xp, peer: xp.Peer(uint8(ic.VRID), uint8(ic.Family()))}
}

// attach makes the XDP program (if any) on ic's interface accept ic's
// adverts and hand them to in.
func (p *planes) attach(ic *config.VRRPInstance, in *instance.Instance) error {
	if xp := p.xdp[ic.Interface]; xp != nil {
		if err := xp.Configure(ic); err != nil {
			return err
		}
		xp.Register(ic, in)
	}
	return nil
}

// release undoes attach for a stopped instance.
func (p *planes) release(ic *config.VRRPInstance, in *instance.Instance) {
	if xp := p.xdp[ic.Interface]; xp != nil {
		xp.Release(ic, in)
	}
}

// dropCounters are the XDP program's VRRP drops by interface and reason.
func (p *planes) dropCounters() map[string]map[string]uint64 {
	if len(p.xdp) == 0 {
		return nil
	}
	out := map[string]map[string]uint64{}
	for name, xp := range p.xdp {
		if c, err := xp.DropCounters(); err == nil {
			out[name] = c
		}
	}
	return out
}

// backend is what the virtual-server manager drives.
func (p *planes) backend() lvs.Backend {
	switch {
	case p.ipvs != nil:
		return p.ipvs
	case len(p.xdp) > 0:
		fb := &lvs.Fanout{Kind: "xdp"}
		for _, xp := range p.xdp {
			fb.Backends = append(fb.Backends, xp)
		}
		return fb
	}
	return lvs.NullBackend{}
}

func (p *planes) createVMAC(ic *config.VRRPInstance) error {
	_, _, err := p.vmacs.Create(netif.VMACConfig{Parent: ic.Interface, VRID: uint8(ic.VRID), IPv6: ic.Family() == 6, Name: ic.VMACName})
	return err
}

func (p *planes) deleteVMAC(ic *config.VRRPInstance) {
	name := instance.VMACName(ic)
	if _, err := p.vmacs.Delete(name); err != nil {
		p.log.Warn("deleting VMAC failed", "name", name, "err", err)
	}
}
