// Package ipvs is the lvs.Backend that programs kernel IPVS through generic
// netlink (github.com/cloudflare/ipvs), as keepalived's check process does.
//
// Apply syncs by difference: it reads the kernel's services, then adds,
// updates and removes only what differs among the services this backend
// owns — those in the desired set and those it created earlier. Services
// made by someone else (ipvsadm, another daemon) are never touched unless
// the desired set names them, in which case the backend takes them over.
package ipvs

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"sync"

	kipvs "github.com/cloudflare/ipvs"

	"github.com/xdpvip/xdpvip/pkg/lvs"
)

// ErrUnavailable is wrapped by Available and New when the kernel has no
// IPVS (the "IPVS" generic netlink family does not exist).
var ErrUnavailable = errors.New("ipvs: kernel IPVS not available")

// Available reports whether this kernel (in this network namespace) has
// IPVS, so that --dataplane auto can choose it. It returns nil or an error
// wrapping ErrUnavailable.
func Available() error {
	c, err := kipvs.New()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if cl, ok := c.(io.Closer); ok {
		_ = cl.Close()
	}
	return nil
}

// Backend programs kernel IPVS. It is safe for concurrent use.
type Backend struct {
	mu     sync.Mutex
	client kipvs.Client
	// owned are the services this backend created or was last asked to
	// forward; Apply may remove them, and no others.
	owned map[lvs.ServiceKey]bool
}

var _ lvs.Backend = (*Backend)(nil)

// New connects to the kernel's IPVS over generic netlink.
func New() (*Backend, error) {
	c, err := kipvs.New()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return NewWithClient(c), nil
}

// NewWithClient returns a Backend that drives the given client (tests pass
// a fake kernel, or a client that records calls).
func NewWithClient(c kipvs.Client) *Backend {
	return &Backend{client: c, owned: make(map[lvs.ServiceKey]bool)}
}

// Name is "ipvs".
func (b *Backend) Name() string { return "ipvs" }

// Close closes the netlink connection. The kernel keeps the services, as
// keepalived leaves them when it is told to.
func (b *Backend) Close() error {
	if cl, ok := b.client.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// Apply makes the kernel forward exactly the given services among the
// ones this backend owns. Every service is validated before the kernel is
// changed; an invalid one makes Apply return an error wrapping
// ErrInvalidService and change nothing. Kernel errors do not stop the
// sync: Apply does what it can and returns them joined.
func (b *Backend) Apply(services []lvs.Service) error {
	desired := make(map[lvs.ServiceKey]kernelService, len(services))
	order := make([]lvs.ServiceKey, 0, len(services))
	for _, s := range services {
		ks, err := toKernel(s)
		if err != nil {
			return err
		}
		if _, dup := desired[ks.key]; dup {
			return fmt.Errorf("%w: %s listed twice", ErrInvalidService, keyString(ks.key))
		}
		desired[ks.key] = ks
		order = append(order, ks.key)
	}

	b.mu.Lock()
	defer b.mu.Unlock()

	have, err := b.kernelServices()
	if err != nil {
		return err
	}

	var errs []error
	// Remove first what is no longer wanted, so that an address moving
	// between services does not collide.
	for _, key := range sortedKeys(b.owned) {
		if _, want := desired[key]; want {
			continue
		}
		if hs, ok := have[key]; ok {
			if err := b.client.RemoveService(hs); err != nil {
				errs = append(errs, fmt.Errorf("ipvs: remove %s: %w", keyString(key), err))
				continue
			}
		}
		delete(b.owned, key)
	}
	for _, key := range order {
		want := desired[key]
		if err := b.syncService(want, have); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syncService creates or updates one service and its real servers.
func (b *Backend) syncService(want kernelService, have map[lvs.ServiceKey]kipvs.Service) error {
	name := keyString(want.key)
	hs, exists := have[want.key]
	if !exists {
		if err := b.client.CreateService(want.svc); err != nil {
			return fmt.Errorf("ipvs: create %s: %w", name, err)
		}
		b.owned[want.key] = true
		var errs []error
		for _, ap := range want.order {
			if err := b.client.CreateDestination(want.svc, want.dests[ap]); err != nil {
				errs = append(errs, fmt.Errorf("ipvs: %s: add real server %s: %w", name, ap, err))
			}
		}
		return errors.Join(errs...)
	}
	b.owned[want.key] = true
	if serviceChanged(hs, want.svc) {
		if err := b.client.UpdateService(want.svc); err != nil {
			return fmt.Errorf("ipvs: update %s: %w", name, err)
		}
	}
	current, err := b.client.Destinations(hs)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ipvs: %s: list real servers: %w", name, err)
	}
	var errs []error
	seen := make(map[netip.AddrPort]bool, len(current))
	for _, hd := range current {
		ap := netip.AddrPortFrom(hd.Address.Unmap(), hd.Port)
		seen[ap] = true
		wd, wanted := want.dests[ap]
		switch {
		case !wanted:
			if err := b.client.RemoveDestination(hs, hd.Destination); err != nil {
				errs = append(errs, fmt.Errorf("ipvs: %s: remove real server %s: %w", name, ap, err))
			}
		case destChanged(hd.Destination, wd):
			if err := b.client.UpdateDestination(want.svc, wd); err != nil {
				errs = append(errs, fmt.Errorf("ipvs: %s: update real server %s: %w", name, ap, err))
			}
		}
	}
	for _, ap := range want.order {
		if seen[ap] {
			continue
		}
		if err := b.client.CreateDestination(want.svc, want.dests[ap]); err != nil {
			errs = append(errs, fmt.Errorf("ipvs: %s: add real server %s: %w", name, ap, err))
		}
	}
	return errors.Join(errs...)
}

// kernelServices reads every service in the kernel, keyed as Apply keys
// them. An empty table is not an error.
func (b *Backend) kernelServices() (map[lvs.ServiceKey]kipvs.Service, error) {
	list, err := b.client.Services()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("ipvs: list services: %w", err)
	}
	out := make(map[lvs.ServiceKey]kipvs.Service, len(list))
	for _, s := range list {
		out[keyOf(s.Service)] = s.Service
	}
	return out, nil
}

// Stats returns the kernel's own counters for the services this backend
// owns that exist in the kernel, sorted by key. Counters are the 64-bit
// ones; active and inactive connections come per real server.
func (b *Backend) Stats() ([]lvs.ServiceStats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	list, err := b.client.Services()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("ipvs: list services: %w", err)
	}
	var out []lvs.ServiceStats
	for _, s := range list {
		key := keyOf(s.Service)
		if !b.owned[key] {
			continue
		}
		st := pickStats(s.Stats64, s.Stats)
		ss := lvs.ServiceStats{
			Key:      key,
			Conns:    st.Connections,
			PktsIn:   st.IncomingPackets,
			PktsOut:  st.OutgoingPackets,
			BytesIn:  st.IncomingBytes,
			BytesOut: st.OutgoingBytes,
		}
		dests, err := b.client.Destinations(s.Service)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("ipvs: %s: list real servers: %w", keyString(key), err)
		}
		for _, d := range dests {
			dst := pickStats(d.Stats64, d.Stats)
			ss.Dests = append(ss.Dests, lvs.DestStats{
				Addr:       d.Address.Unmap(),
				Port:       d.Port,
				ActiveConn: uint64(d.ActiveConnections),
				InactConn:  uint64(d.InactiveConnections),
				Conns:      dst.Connections,
				PktsIn:     dst.IncomingPackets,
				PktsOut:    dst.OutgoingPackets,
				BytesIn:    dst.IncomingBytes,
				BytesOut:   dst.OutgoingBytes,
			})
		}
		slices.SortFunc(ss.Dests, func(x, y lvs.DestStats) int {
			return netip.AddrPortFrom(x.Addr, x.Port).Compare(netip.AddrPortFrom(y.Addr, y.Port))
		})
		out = append(out, ss)
	}
	slices.SortFunc(out, func(x, y lvs.ServiceStats) int { return compareKeys(x.Key, y.Key) })
	return out, nil
}

// Destinations reads the real servers the kernel has for a service, in
// the lvs model's terms (destFromKernel: method, weight, tunnel), sorted
// by address and port: what Apply programmed, as the kernel reports it.
func (b *Backend) Destinations(key lvs.ServiceKey) ([]lvs.Dest, error) {
	nk, err := normalKey(key)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	have, err := b.kernelServices()
	if err != nil {
		return nil, err
	}
	hs, ok := have[nk]
	if !ok {
		return nil, fmt.Errorf("ipvs: %s: %w", keyString(nk), os.ErrNotExist)
	}
	list, err := b.client.Destinations(hs)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("ipvs: %s: list real servers: %w", keyString(nk), err)
	}
	out := make([]lvs.Dest, 0, len(list))
	for _, d := range list {
		out = append(out, destFromKernel(d.Destination))
	}
	slices.SortFunc(out, func(x, y lvs.Dest) int {
		return netip.AddrPortFrom(x.Addr, x.Port).Compare(netip.AddrPortFrom(y.Addr, y.Port))
	})
	return out, nil
}

// pickStats prefers the 64-bit counters, which kernels since 4.1 send.
func pickStats(s64, s32 kipvs.Stats) kipvs.Stats {
	if s64 != (kipvs.Stats{}) {
		return s64
	}
	return s32
}

func compareKeys(x, y lvs.ServiceKey) int {
	switch {
	case x.Fwmark != y.Fwmark:
		if x.Fwmark < y.Fwmark {
			return -1
		}
		return 1
	case x.Family != y.Family:
		return int(x.Family) - int(y.Family)
	case x.Proto != y.Proto:
		return int(x.Proto) - int(y.Proto)
	}
	return netip.AddrPortFrom(x.Addr, x.Port).Compare(netip.AddrPortFrom(y.Addr, y.Port))
}

func sortedKeys(m map[lvs.ServiceKey]bool) []lvs.ServiceKey {
	keys := make([]lvs.ServiceKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	return keys
}
