package dataplane

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

func vrrpGroup4() netip.Addr { return vrrp.Group4 }

// sendVRRP4 sends msg as one IP protocol 112 packet with TTL 255 to the
// VRRP group, from the calling thread's network namespace.
func sendVRRP4(src netip.Addr, msg []byte) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, 112)
	if err != nil {
		return fmt.Errorf("raw socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 255); err != nil {
		return err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()}); err != nil {
		return err
	}
	return unix.Sendto(fd, msg, 0, &unix.SockaddrInet4{Addr: vrrp.Group4.As4()})
}
