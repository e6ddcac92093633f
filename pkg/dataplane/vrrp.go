package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// VRIDConfig is what the XDP program checks adverts of one VRRP instance
// against.
type VRIDConfig struct {
	// Version is the VRRP version, 2 or 3. Adverts of the other version
	// are dropped as "version".
	Version uint8
	// Family is 4 or 6. VRRPv2 is IPv4 only.
	Family uint8
	// AuthType is VRRPv2's authentication type: 0 none, 1 simple password
	// (keepalived's auth_type PASS). Ignored for v3.
	AuthType uint8
	// AuthPass is the v2 password, at most 8 bytes (keepalived truncates
	// longer ones to 8).
	AuthPass string
	// Interval is the advert_int v2 adverts must carry (whole seconds);
	// 0 accepts any. v3 adverts carry their own interval and are not checked.
	Interval time.Duration
	// Peers are the unicast peers adverts may come from; empty accepts any
	// source (a multicast instance: adverts must then arrive with TTL /
	// hop limit 255; a unicast instance's need not, as in keepalived).
	Peers []netip.Addr
	// PeerTTL is the TTL / hop limit range a unicast peer's adverts must
	// arrive with (unicast_peer's min_ttl / max_ttl); a peer not in it
	// accepts any (0..255).
	PeerTTL map[netip.Addr]TTLRange
	// AddrCount is the address count adverts must carry; 0 accepts any.
	AddrCount uint8
}

// TTLRange is an inclusive TTL / hop limit range.
type TTLRange struct{ Min, Max uint8 }

// MaxMessageLen is the largest VRRP message (header, addresses, v2
// authentication data) the XDP program accepts, VRRP_MAX_MSG in
// bpf/consts.h (the payload array of the ring-buffer record): 1536 bytes,
// so 255 IPv4 addresses (v2: 1036 bytes) but at most 95 IPv6 ones.
// Longer adverts are dropped as addr_count.
const MaxMessageLen = len(xdpvipVrrpEvent{}.Payload)

// MaxAddrs is the most addresses an advert of this version and family (4
// or 6) may carry for the program to accept it: what fits MaxMessageLen,
// and at most 255 (the count is one byte). v2: 255 IPv4; v3: 255 IPv4,
// 95 IPv6. A VRRP instance with more VIPs than this cannot run on the XDP
// dataplane: its BACKUP would drop every advert as addr_count.
func MaxAddrs(version, family uint8) int {
	alen, fixed := 4, vrrpHeaderLen
	if family == 6 {
		alen = 16
	}
	if version == 2 {
		fixed += vrrpV2AuthLen
	}
	return min((MaxMessageLen-fixed)/alen, 255)
}

// vrrpV2AuthLen is VRRPv2's trailing authentication data (VRRP_V2_AUTH_LEN,
// the size of the configured password).
const vrrpV2AuthLen = len(xdpvipVridCfg{}.Auth)

// AdvertEvent is one valid advert as the XDP program saw it.
type AdvertEvent struct {
	VRID     uint8
	Family   uint8 // 4 or 6
	Version  uint8
	Priority uint8
	// Interval is the advert interval the advert carries.
	Interval time.Duration
	Src, Dst netip.Addr
	// Payload is the VRRP message (header, addresses, v2 auth data) as
	// the program validated it: version, type, VRID, count, length,
	// checksum, TTL, authentication, interval and unicast peer.
	Payload []byte
	// Addrs are the message's addresses, read from Payload.
	Addrs []netip.Addr
	// Monotonic is CLOCK_MONOTONIC at reception, to the kernel's tick
	// (bpf_ktime_get_coarse_ns: CLOCK_MONOTONIC_COARSE, never ahead of
	// CLOCK_MONOTONIC; the fine clock cost a fifth of a valid advert).
	Monotonic time.Duration
}

// PeerState is the last valid advert seen for a (VRID, family).
type PeerState struct {
	Src       netip.Addr
	Priority  uint8
	Version   uint8
	Interval  time.Duration
	Monotonic time.Duration // when it was last seen (as AdvertEvent.Monotonic)
	Count     uint64
}

// ConfigureVRID tells the program to accept adverts for vrid as cfg says.
// Reconfiguring replaces the previous settings.
func (d *Dataplane) ConfigureVRID(vrid uint8, cfg VRIDConfig) error {
	if cfg.Version != 2 && cfg.Version != 3 {
		return fmt.Errorf("%w: vrid %d: version %d", ErrBadVRID, vrid, cfg.Version)
	}
	if cfg.Family != 4 && cfg.Family != 6 {
		return fmt.Errorf("%w: vrid %d: family %d", ErrBadVRID, vrid, cfg.Family)
	}
	if cfg.Version == 2 && cfg.Family == 6 {
		return fmt.Errorf("%w: vrid %d: VRRPv2 is IPv4 only", ErrBadVRID, vrid)
	}
	if vrid == 0 {
		return fmt.Errorf("%w: vrid 0", ErrBadVRID)
	}
	if cfg.AuthType > 1 {
		return fmt.Errorf("%w: vrid %d: auth type %d not supported", ErrBadVRID, vrid, cfg.AuthType)
	}
	if max := MaxAddrs(cfg.Version, cfg.Family); int(cfg.AddrCount) > max {
		return fmt.Errorf("%w: vrid %d: %d addresses, the XDP program accepts at most %d in a v%d IPv%d advert (%d bytes)",
			ErrBadVRID, vrid, cfg.AddrCount, max, cfg.Version, cfg.Family, MaxMessageLen)
	}
	secs := cfg.Interval / time.Second
	if cfg.Interval%time.Second != 0 || secs > 255 {
		return fmt.Errorf("%w: vrid %d: v2 interval %v is not whole seconds in 0..255", ErrBadVRID, vrid, cfg.Interval)
	}
	val := xdpvipVridCfg{
		Version:   cfg.Version,
		AuthType:  cfg.AuthType,
		AddrCount: cfg.AddrCount,
	}
	if cfg.Version == 2 {
		val.IntervalCs = uint16(secs * 100)
		if cfg.AuthType == 1 {
			copy(val.Auth[:], cfg.AuthPass)
		}
	}
	if len(cfg.Peers) == 0 {
		val.AnyPeer = 1
	}
	keep := map[xdpvipPeerKey]bool{}
	for _, p := range cfg.Peers {
		p = p.Unmap()
		if family(p) != cfg.Family {
			return fmt.Errorf("%w: vrid %d: peer %v is not IPv%d", ErrBadVRID, vrid, p, cfg.Family)
		}
		pk := xdpvipPeerKey{Vrid: vrid, Family: cfg.Family, Addr: addr16(p)}
		keep[pk] = true
		ttl := xdpvipPeerTtl{MinTtl: 0, MaxTtl: 255}
		if r, ok := cfg.PeerTTL[p]; ok {
			ttl = xdpvipPeerTtl{MinTtl: r.Min, MaxTtl: r.Max}
		}
		if err := d.objs.VrrpPeers.Put(&pk, &ttl); err != nil {
			return fmt.Errorf("dataplane: vrid %d: peer %v: %w", vrid, p, err)
		}
	}
	key := xdpvipVridKey{Vrid: vrid, Family: cfg.Family}
	if err := d.objs.VridConfig.Put(&key, &val); err != nil {
		return fmt.Errorf("dataplane: vrid %d: %w", vrid, err)
	}
	return d.deletePeers(vrid, cfg.Family, keep)
}

// RemoveVRID stops accepting adverts for (vrid, family); they are then
// dropped as "vrid".
func (d *Dataplane) RemoveVRID(vrid, family uint8) error {
	key := xdpvipVridKey{Vrid: vrid, Family: family}
	if err := d.objs.VridConfig.Delete(&key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("dataplane: remove vrid %d: %w", vrid, err)
	}
	if err := d.objs.VrrpPeerState.Delete(&key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("dataplane: remove vrid %d state: %w", vrid, err)
	}
	return d.deletePeers(vrid, family, nil)
}

// deletePeers removes (vrid, family)'s allow-list entries not in keep.
func (d *Dataplane) deletePeers(vrid, fam uint8, keep map[xdpvipPeerKey]bool) error {
	var (
		k    xdpvipPeerKey
		v    xdpvipPeerTtl
		dead []xdpvipPeerKey
	)
	it := d.objs.VrrpPeers.Iterate()
	for it.Next(&k, &v) {
		if k.Vrid == vrid && k.Family == fam && !keep[k] {
			dead = append(dead, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("dataplane: list peers: %w", err)
	}
	for _, k := range dead {
		if err := d.objs.VrrpPeers.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("dataplane: delete peer: %w", err)
		}
	}
	return nil
}

// Peer returns the last valid advert seen for (vrid, family); ok is false
// when none has been seen since the VRID was configured.
func (d *Dataplane) Peer(vrid, family uint8) (p PeerState, ok bool, err error) {
	var v xdpvipVrrpPeer
	key := xdpvipVridKey{Vrid: vrid, Family: family}
	if err := d.objs.VrrpPeerState.Lookup(&key, &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return PeerState{}, false, nil
		}
		return PeerState{}, false, fmt.Errorf("dataplane: peer state: %w", err)
	}
	return PeerState{
		Src:       addrFrom16(v.Src, family),
		Priority:  v.Priority,
		Version:   v.Version,
		Interval:  time.Duration(v.IntervalCs) * 10 * time.Millisecond,
		Monotonic: time.Duration(v.LastSeenNs),
		Count:     v.Count,
	}, true, nil
}

// readSlice bounds one blocking ring-buffer read so ReadAdvert notices a
// cancelled context.
const readSlice = 200 * time.Millisecond

// ReadAdvert blocks until the program accepts an advert or ctx ends. Call
// it from one goroutine at a time.
func (d *Dataplane) ReadAdvert(ctx context.Context) (AdvertEvent, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return AdvertEvent{}, ErrClosed
	}
	if d.ring == nil {
		r, err := ringbuf.NewReader(d.objs.VrrpEvents)
		if err != nil {
			d.mu.Unlock()
			return AdvertEvent{}, fmt.Errorf("dataplane: ring buffer: %w", err)
		}
		d.ring = r
	}
	r := d.ring
	d.mu.Unlock()

	// The reader holds its lock while blocked, so a deadline cannot be set
	// from another goroutine: wait in short slices and check ctx between.
	for {
		if err := ctx.Err(); err != nil {
			return AdvertEvent{}, err
		}
		dl := time.Now().Add(readSlice)
		if cd, ok := ctx.Deadline(); ok && cd.Before(dl) {
			dl = cd
		}
		r.SetDeadline(dl)
		rec, err := r.Read()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if errors.Is(err, ringbuf.ErrClosed) {
				return AdvertEvent{}, ErrClosed
			}
			return AdvertEvent{}, fmt.Errorf("dataplane: read ring buffer: %w", err)
		}
		ev, err := decodeAdvertEvent(rec.RawSample)
		if err != nil {
			return AdvertEvent{}, err
		}
		return ev, nil
	}
}

// errShortEvent is returned for a ring-buffer record that is not a whole
// struct vrrp_event or whose payload is not the message BPF validated.
var errShortEvent = errors.New("dataplane: short advert event")

// eventSize is the size of one ring-buffer record (struct vrrp_event).
const eventSize = int(unsafe.Sizeof(xdpvipVrrpEvent{}))

// decodeAdvertEvent decodes one ring-buffer record through the generated
// type (struct vrrp_event, host layout) and the VRRP message it carries.
// The program validated the message; this only reads it.
func decodeAdvertEvent(b []byte) (AdvertEvent, error) {
	var raw xdpvipVrrpEvent
	if len(b) < eventSize {
		return AdvertEvent{}, fmt.Errorf("%w: %d bytes, want %d", errShortEvent, len(b), eventSize)
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&raw)), eventSize), b)
	ev := AdvertEvent{
		Monotonic: time.Duration(raw.KtimeNs),
		VRID:      raw.Vrid,
		Family:    raw.Family,
		Version:   raw.Version,
		Priority:  raw.Priority,
		Interval:  time.Duration(raw.IntervalCs) * 10 * time.Millisecond,
	}
	alen := 4
	switch ev.Family {
	case 4:
	case 6:
		alen = 16
	default:
		return AdvertEvent{}, fmt.Errorf("dataplane: advert event: family %d", ev.Family)
	}
	n := int(raw.PayloadLen)
	if n < vrrpHeaderLen || n > len(raw.Payload) {
		return AdvertEvent{}, fmt.Errorf("%w: payload %d bytes", errShortEvent, n)
	}
	ev.Src = addrFrom16(raw.Src, ev.Family)
	ev.Dst = addrFrom16(raw.Dst, ev.Family)
	ev.Payload = append([]byte(nil), raw.Payload[:n]...)
	count := int(ev.Payload[vrrpCountOffset])
	if vrrpHeaderLen+count*alen > n {
		return AdvertEvent{}, fmt.Errorf("%w: %d addresses in %d bytes", errShortEvent, count, n)
	}
	ev.Addrs = make([]netip.Addr, count)
	for i := range ev.Addrs {
		a := ev.Payload[vrrpHeaderLen+i*alen:]
		if alen == 4 {
			ev.Addrs[i] = netip.AddrFrom4([4]byte(a[:4]))
		} else {
			ev.Addrs[i] = netip.AddrFrom16([16]byte(a[:16]))
		}
	}
	return ev, nil
}

// The VRRP header fields the event decoder reads (struct vrrp_hdr in
// bpf/parsing.h; RFC 3768 §5.1, RFC 5798 §5.1).
const (
	vrrpHeaderLen   = int(unsafe.Sizeof(xdpvipVrrpHdr{}))
	vrrpCountOffset = int(unsafe.Offsetof(xdpvipVrrpHdr{}.Count))
)

// dropCounters pairs each BPF drop counter with pkg/vrrp's reason of the
// same meaning, whose name it is reported under. The BPF enum has no
// "none", so counter c is vrrp.DropReason(c+1); the test checks this
// table covers both enums.
var dropCounters = [...]struct {
	c      xdpvipCounter
	reason vrrp.DropReason
}{
	{xdpvipCounterCNT_TRUNCATED, vrrp.DropTruncated},
	{xdpvipCounterCNT_TTL, vrrp.DropTTL},
	{xdpvipCounterCNT_VERSION, vrrp.DropVersion},
	{xdpvipCounterCNT_TYPE, vrrp.DropType},
	{xdpvipCounterCNT_VRID, vrrp.DropVRID},
	{xdpvipCounterCNT_LENGTH, vrrp.DropLength},
	{xdpvipCounterCNT_ADDR_COUNT, vrrp.DropAddrCount},
	{xdpvipCounterCNT_CHECKSUM, vrrp.DropChecksum},
	{xdpvipCounterCNT_AUTH_TYPE, vrrp.DropAuthType},
	{xdpvipCounterCNT_AUTH, vrrp.DropAuth},
	{xdpvipCounterCNT_INTERVAL, vrrp.DropInterval},
	{xdpvipCounterCNT_UNICAST_PEER, vrrp.DropUnicastPeer},
	{xdpvipCounterCNT_FAMILY, vrrp.DropFamily},
}

// counterNames names every index of the counters map (enum counter in
// bpf/shared.h): the drop reasons by their pkg/vrrp names, then the rest.
var counterNames = func() map[xdpvipCounter]string {
	m := map[xdpvipCounter]string{
		xdpvipCounterCNT_VRRP_VALID:   "vrrp_valid",
		xdpvipCounterCNT_RINGBUF_FULL: "ringbuf_full",
		xdpvipCounterCNT_FWD_TX:       "fwd_tx",
		xdpvipCounterCNT_FWD_REDIRECT: "fwd_redirect",
		xdpvipCounterCNT_FWD_NO_REAL:  "fwd_no_real",
		// TUN frames too big for the tunnel: answered with ICMP, or dropped.
		xdpvipCounterCNT_TUN_ICMP4TOO_BIG: "tun_icmp4_too_big",
		xdpvipCounterCNT_TUN_ICMP6TOO_BIG: "tun_icmp6_too_big",
		xdpvipCounterCNT_TUN_TOO_BIG_DROP: "tun_too_big_drop",
	}
	for _, d := range dropCounters {
		m[d.c] = d.reason.String()
	}
	return m
}()

// Counters returns every counter of the program, summed over CPUs, by name:
// the VRRP drop reasons (see DropCounters), vrrp_valid, ringbuf_full,
// fwd_tx, fwd_redirect, fwd_no_real and the TUN too-big counters
// tun_icmp4_too_big, tun_icmp6_too_big and tun_too_big_drop.
func (d *Dataplane) Counters() (map[string]uint64, error) {
	out := make(map[string]uint64, len(counterNames))
	for idx, name := range counterNames {
		var per []uint64
		if err := d.objs.Counters.Lookup(uint32(idx), &per); err != nil {
			return nil, fmt.Errorf("dataplane: counter %s: %w", name, err)
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		out[name] = sum
	}
	return out, nil
}

// DropCounters returns the VRRP drop counters by reason: truncated, ttl,
// version, type, vrid, length, addr_count, checksum, auth_type, auth,
// interval, unicast_peer, family.
func (d *Dataplane) DropCounters() (map[string]uint64, error) {
	all, err := d.Counters()
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64, len(dropCounters))
	for _, d := range dropCounters {
		out[counterNames[d.c]] = all[counterNames[d.c]]
	}
	return out, nil
}
