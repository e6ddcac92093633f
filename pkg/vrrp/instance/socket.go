package instance

import (
	"context"
	"errors"
	"time"

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
		in.Deliver(Datagram{Payload: p.Payload, Src: p.Src, Dst: p.Dst, TTL: p.TTL})
	}
}

// SystemClock is the real Clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
