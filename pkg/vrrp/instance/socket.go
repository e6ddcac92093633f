package instance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xdpvip/xdpvip/pkg/config"
	"github.com/xdpvip/xdpvip/pkg/netif"

	"github.com/xdpvip/xdpvip/pkg/vrrp"
	"github.com/xdpvip/xdpvip/pkg/vrrpnet"
)

// PacketReader is the raw socket adverts arrive on (*vrrpnet.Conn).
type PacketReader interface {
	Recv(ctx context.Context) (vrrpnet.Packet, error)
}

// ReceiveFrom reads r until ctx ends and delivers each datagram as a
// Datagram. Errors about one datagram are counted; a closed socket ends
// the loop.
func (in *Instance) ReceiveFrom(ctx context.Context, r PacketReader) {
	for {
		p, err := r.Recv(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, vrrpnet.ErrClosed) {
				return
			}
			if errors.Is(err, vrrpnet.ErrTruncated) || errors.Is(err, vrrpnet.ErrBadIPv4Header) {
				in.CountDrop(vrrp.DropTruncated)
				continue
			}
			in.log.Warn("receiving adverts failed", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		in.Deliver(Datagram{Payload: p.Payload, Src: p.Src, Dst: p.Dst, TTL: p.TTL, At: p.Received})
	}
}

// SystemClock is the real Clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// relinkRetry is how often a failed IO rebuild is tried again.
const relinkRetry = time.Second

func (in *Instance) setLinkFault(now time.Time, fault bool) {
	if in.linkFault == fault {
		return
	}
	in.linkFault = fault
	in.log.Info("interface fault", "fault", fault)
	in.faultChanged(now)
}

// relink rebuilds the IO on the re-created interface; the link fault ends
// only once that worked (the old socket and announcer are bound to an
// interface that no longer exists: leaving FAULT with them would make a
// MASTER that hears nobody).
func (in *Instance) relink(now time.Time) {
	in.closeIO()
	if in.d.Reopen == nil {
		in.log.Error("interface re-created but the instance cannot rebuild its socket: staying in FAULT")
		return
	}
	io, err := in.d.Reopen()
	if err != nil {
		in.relinkAt = now.Add(relinkRetry)
		in.log.Warn("rebuilding socket and announcer on the re-created interface failed: staying in FAULT", "err", err, "retry_in", relinkRetry)
		return
	}
	if src := io.Sender.Source(); src != in.io.Sender.Source() {
		in.log.Warn("the re-created interface has another source address; elections still tie-break on the old one", "old", in.io.Sender.Source(), "new", src)
	}
	in.relinkAt = time.Time{}
	in.io = io
	in.startReceiver()
	in.log.Info("socket and announcer rebuilt on the re-created interface")
	in.setLinkFault(now, false)
}

// startReceiver runs the receive loop of the current IO's socket, if
// adverts come from it. It ends when the IO is closed.
func (in *Instance) startReceiver() {
	if rx := in.io.Receiver; rx != nil {
		go in.ReceiveFrom(in.ctx, rx)
	}
	in.watchClaims()
}

func (in *Instance) closeIO() {
	if in.io.Close != nil {
		if err := in.io.Close(); err != nil {
			in.log.Warn("closing socket and announcer failed", "err", err)
		}
		in.io.Close = nil
	}
}

// OpenIO opens ic's IO: the raw socket adverts are sent on (and received
// on when receive is set, without XDP) and the announcer for gratuitous
// ARP / NA (on the VMAC with use_vmac).
func OpenIO(ic *config.VRRPInstance, receive bool) (IO, error) {
	conn, err := vrrpnet.Open(vrrpnet.Config{
		Iface: ic.Interface, IPv6: ic.Family() == 6, Source: ic.UnicastSrcIP, Peers: ic.UnicastPeers,
		UnicastTTL: unicastTTL(ic),
	})
	if err != nil {
		return IO{}, err
	}
	annIface := ic.Interface
	var mac []byte
	if ic.UseVMAC {
		annIface = VMACName(ic)
		mac = netif.VMACAddr(uint8(ic.VRID), ic.Family() == 6)
	}
	ann, err := netif.OpenAnnouncer(netif.AnnouncerConfig{Iface: annIface, MAC: mac})
	if err != nil {
		conn.Close()
		return IO{}, fmt.Errorf("announcer on %s: %w", annIface, err)
	}
	claims, closeClaims, err := openClaimWatch(ic.Interface, mac)
	if err != nil {
		conn.Close()
		ann.Close()
		return IO{}, err
	}
	io := IO{Sender: conn, Announcer: ann, Claims: claims, Close: func() error {
		return errors.Join(conn.Close(), ann.Close(), closeClaims())
	}}
	if receive {
		io.Receiver = conn
	}
	return io, nil
}

// unicastTTL is vrrpnet's UnicastTTL for ic's unicast_ttl: unset (-1) is
// the default, 255; 0, which Linux refuses to send on IPv4 without a
// hand-built header, is 1 (pkg/config warns). keepalived sends the
// configured value with unicast peers only, as vrrpnet does.
func unicastTTL(ic *config.VRRPInstance) int {
	switch {
	case ic.UnicastTTL < 0:
		return 0
	case ic.UnicastTTL == 0:
		return 1
	}
	return ic.UnicastTTL
}

// VMACName is the name of ic's VMAC interface (use_vmac).
func VMACName(ic *config.VRRPInstance) string {
	if ic.VMACName != "" {
		return ic.VMACName
	}
	return netif.VMACName(uint8(ic.VRID))
}
