package main

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/xdpvip/xdpvip/internal/packet"
	"github.com/xdpvip/xdpvip/pkg/vrrp"
)

// The generator's frames, built with the project's encoders and handed to
// trafgen as literal bytes.

// udpPayloadLen makes every UDP frame 60 bytes (the Ethernet minimum
// without FCS): 14 Ethernet + 20 IPv4 + 8 UDP + 18.
const udpPayloadLen = 18

// udpFrames returns one frame per flow from src (source ports firstPort,
// firstPort+1, …) to dst, with dstMAC as the Ethernet destination.
func udpFrames(flows int, dstMAC, srcMAC net.HardwareAddr, src netip.Addr, firstPort uint16, dst netip.AddrPort) [][]byte {
	out := make([][]byte, flows)
	payload := make([]byte, udpPayloadLen)
	for i := range out {
		sp := netip.AddrPortFrom(src, firstPort+uint16(i))
		out[i] = packet.UDPFrame(dstMAC, srcMAC, sp, dst, payload)
	}
	return out
}

// foreignAdvertFrame is a well-formed VRRPv3 advert for vrid to the VRRP
// group: with no instance for vrid configured, the XDP program drops it
// (counted as "vrid").
func foreignAdvertFrame(vrid uint8, srcMAC net.HardwareAddr, src netip.Addr) ([]byte, error) {
	a := vrrp.Advert{Version: vrrp.Version3, Type: vrrp.TypeAdvertisement, VRID: vrid, Priority: 100,
		Interval: 100 * time.Millisecond, Addrs: []netip.Addr{vipAddr}}
	b, err := a.Marshal(src, vrrp.Group4)
	if err != nil {
		return nil, fmt.Errorf("advert for VRID %d: %w", vrid, err)
	}
	group := net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12} // 224.0.0.18
	return packet.IPFrame(group, srcMAC, src, vrrp.Group4, packet.ProtoVRRP, vrrp.TTL, b), nil
}
