package tests

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLVSRate: `xdpvip lvs --rate` under a steady UDP stream through the
// VIP (the client paces 2000 datagrams/s for several seconds) shows InPPS
// within 10 % of what the client sent, and InBPS that matches the frames.
func TestLVSRate(t *testing.T) {
	requireNginx(t)
	l := newLVSLab(t)
	l.StartNginx(l.RS1) // the TCP_CHECK target; the UDP stream has no listener (DR: rs1 answers ICMP itself)
	vs := fmt.Sprintf(`virtual_server %s 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol UDP
    real_server %s 80 {
        TCP_CHECK {
            connect_timeout 1
            connect_port 80
        }
    }
}
`, labVIP, l.RS1.Addr(4))
	n1, _ := l.StartLBs(vs)
	waitCLIDest(t, n1, l.RS1.Addr(4).String(), true, 10*time.Second)

	const rate = 2000 // datagrams per second
	const payload = 100
	var sent atomic.Int64
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- inNS(l.Client, func() error {
			c, err := net.Dial("udp4", net.JoinHostPort(labVIP, "80"))
			if err != nil {
				return err
			}
			defer c.Close()
			buf := make([]byte, payload)
			// 10 datagrams every 5 ms; the count since start keeps the pace
			// exact over the run whatever the ticker's jitter.
			start := time.Now()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return nil
				case <-tick.C:
				}
				due := int64(time.Since(start).Seconds() * rate)
				for sent.Load() < due {
					if _, err := c.Write(buf); err != nil && !strings.Contains(err.Error(), "refused") {
						return err
					}
					sent.Add(1)
				}
			}
		})
	}()
	defer func() {
		close(stop)
		if err := <-done; err != nil {
			t.Errorf("client: %v", err)
		}
	}()
	time.Sleep(1500 * time.Millisecond) // the stream settles (ARP, flow entry)

	before := sent.Load()
	t0 := time.Now()
	out, err := n1.CLI("lvs", "--rate", "--rate-interval", "2s")
	clientRate := float64(sent.Load()-before) / time.Since(t0).Seconds()
	if err != nil {
		t.Fatalf("xdpvip lvs --rate: %v\n%s", err, out)
	}
	t.Logf("client sent %.0f datagrams/s; xdpvip lvs --rate:\n%s", clientRate, out)
	if !strings.Contains(out, "CPS    InPPS   OutPPS    InBPS   OutBPS") {
		t.Fatalf("no ipvsadm --rate header:\n%s", out)
	}
	m := regexp.MustCompile(`(?m)^UDP  ` + regexp.QuoteMeta(labVIP) + `:80\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no UDP virtual server line:\n%s", out)
	}
	pps, _ := strconv.ParseFloat(m[2], 64)
	bps, _ := strconv.ParseFloat(m[4], 64)
	if pps < 0.9*clientRate || pps > 1.1*clientRate {
		t.Errorf("InPPS %.0f, client sent %.0f/s: not within 10 %%", pps, clientRate)
	}
	// The same counters reach Prometheus's exposition (node_exporter's IPVS
	// labels), with the TCP_CHECK's results.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	metricsOut, err := l.LVS1.Exec(ctx, "curl", "-sf", "http://127.0.0.1:9165/metrics")
	if err != nil {
		t.Fatalf("scraping lvs1: %v", err)
	}
	for _, re := range []string{
		`(?m)^xdpvip_ipvs_backend_incoming_packets_total\{local_address="` + regexp.QuoteMeta(labVIP) + `",local_mark="",local_port="80",proto="UDP",remote_address="` + regexp.QuoteMeta(l.RS1.Addr(4).String()) + `",remote_port="80"\} [1-9]`,
		`(?m)^xdpvip_healthcheck_results_total\{backend="` + regexp.QuoteMeta(l.RS1.Addr(4).String()) + `:80",checker="TCP_CHECK",result="success",service="[^"]+"\} [1-9]`,
		`(?m)^xdpvip_healthcheck_duration_seconds_count\{backend="[^"]+",checker="TCP_CHECK",service="[^"]+"\} [1-9]`,
		`(?m)^xdpvip_bpf_map_usage_ratio\{interface="eth0",map="flows"\} [0-9.e-]+$`,
		`(?m)^xdpvip_xdp_packets_total\{counter="fwd_tx",interface="eth0"\} [1-9]`,
		`(?m)^keepalived_vrrp_state\{iname="VI_1",intf="eth0",ip_address="` + regexp.QuoteMeta(labVIP) + `",vrid="51"\} 2$`,
	} {
		if !regexp.MustCompile(re).Match(metricsOut) {
			t.Errorf("lvs1's /metrics has no line matching %s", re)
		}
	}
	// Each datagram is one Ethernet frame of 14+20+8+payload bytes.
	frame := float64(14 + 20 + 8 + payload)
	if bps < 0.9*pps*frame || bps > 1.1*pps*frame {
		t.Errorf("InBPS %.0f is not InPPS × %v-byte frames (%.0f)", bps, frame, pps*frame)
	}
}
