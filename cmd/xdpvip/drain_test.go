package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/daemon"
	"github.com/xdpvip/xdpvip/pkg/bgp"
	"github.com/xdpvip/xdpvip/pkg/config"
)

func TestWriteBGPStatus(t *testing.T) {
	var b bytes.Buffer
	writeBGPStatus(&b, nil)
	if b.Len() != 0 {
		t.Errorf("no bgp block printed %q", b.String())
	}
	writeBGPStatus(&b, &daemon.BGPStatus{RouterID: "10.78.1.11", LocalAS: 65010, Interface: "eth0", Draining: true,
		Sessions: []bgp.Session{{Neighbor: "10.78.1.1", RemoteAS: 65000, State: "ESTABLISHED", HoldTime: 3, BFD: "UP",
			Uptime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)}},
		Routes: []daemon.RouteStatus{{Prefix: "10.78.9.1/32", Mode: "ecmp", Reason: "draining", Forwarded: true,
			VirtualServers: []string{"10.78.9.1:80", "10.78.9.1:443"}}}})
	out := b.String()
	for _, want := range []string{
		"BGP router_id 10.78.1.11, AS 65010, interface eth0, DRAINING",
		"10.78.1.1  65000  ESTABLISHED  2026-01-02 03:04:05  3     UP",
		"10.78.9.1/32  ecmp  false      true       draining  10.78.9.1:80,10.78.9.1:443",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteBGPSummary(t *testing.T) {
	cfg, _, err := config.Load("../../examples/bgp-ecmp.conf")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	writeSummary(&b, cfg)
	for _, want := range []string{
		"bgp: local_as 65010, router_id 10.78.1.101, interface eth0\n",
		"  neighbor 10.78.1.1 remote_as 65000 hold_time 3s, bfd, md5, graceful_restart 30s\n",
		"virtual_server 10.78.9.1:80 TCP: mh DR, announce ecmp, delay_loop 2s",
		"virtual_server 10.78.9.2:80 TCP: wrr DR, announce while VI_1 is MASTER,",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}
