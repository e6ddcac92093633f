package lvs

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
)

// ListOptions select the listing format of WriteList.
type ListOptions struct {
	// Stats prints counters in the layout of `ipvsadm -Ln --stats`.
	Stats bool
	// Rate prints the counters (already per-second, see Rates) in the
	// layout of `ipvsadm -Ln --rate`.
	Rate bool
	// TunInfo adds ipvsadm 1.31's TunnelInfo column (`ipvsadm -Ln
	// --tun-info`): "ipip", "gue:6080:-c", "gre:+c", "n/a" unless TUN.
	TunInfo bool
	// JSON prints the views as a JSON document instead of text.
	JSON bool
	// Dataplane names the backend in the header line ("xdp", "ipvs").
	Dataplane string
}

// ListJSON is the JSON document WriteList prints with opts.JSON.
type ListJSON struct {
	Dataplane string        `json:"dataplane,omitempty"`
	Services  []ServiceView `json:"virtual_servers"`
}

// WriteList prints views in the layout of `ipvsadm -Ln` (or `ipvsadm -Ln
// --stats`, or JSON). Columns and widths are ipvsadm's; only the first
// line differs (xdpvip names itself and its dataplane instead of the IPVS
// version). Real servers that are not simply active get a marker after
// the last column ("DOWN", "DOWN inhibited", "standby", "sorry", ...),
// and a removed real server shows "-" as its weight; a virtual server
// without quorum gets "[quorum lost …]" after its flags. Lines of active
// real servers are byte-for-byte ipvsadm's.
func WriteList(w io.Writer, views []ServiceView, opts ListOptions) error {
	if opts.JSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if views == nil {
			views = []ServiceView{}
		}
		return enc.Encode(ListJSON{Dataplane: opts.Dataplane, Services: views})
	}
	bw := bufio.NewWriter(w)
	if opts.Dataplane != "" {
		fmt.Fprintf(bw, "xdpvip Virtual Server (dataplane %s)\n", opts.Dataplane)
	} else {
		fmt.Fprintf(bw, "xdpvip Virtual Server\n")
	}
	switch {
	case opts.Rate:
		fmt.Fprintf(bw, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
		opts.Stats = true // the same columns
	case opts.Stats:
		fmt.Fprintf(bw, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	case opts.TunInfo:
		bw.WriteString("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n")
	default:
		bw.WriteString("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	}
	for i := range views {
		writeService(bw, &views[i], opts)
	}
	return bw.Flush()
}

func writeService(w *bufio.Writer, v *ServiceView, opts ListOptions) {
	six := v.Family == 6
	var name string
	if v.Fwmark != 0 {
		name = fmt.Sprintf("FWM  %d", v.Fwmark)
		if six {
			name += " IPv6"
		}
	} else {
		name = v.Protocol + "  " + addrPort(v.Addr, v.Port)
		if !six {
			name = truncate(name, 33)
		}
	}
	quorum := ""
	if !v.QuorumUp {
		quorum = fmt.Sprintf("  [quorum lost: weight %d < %d", v.LiveWeight, v.Quorum)
		if v.SorryInUse {
			quorum += ", sorry server in use"
		}
		quorum += "]"
	}
	if opts.Stats {
		fmt.Fprintf(w, "%-33s", name)
		writeCounters(w, v.Counters)
		w.WriteString(quorum + "\n")
	} else {
		fmt.Fprintf(w, "%s %s", name, v.Scheduler)
		if v.PersistenceTimeout > 0 {
			fmt.Fprintf(w, " persistent %d", v.PersistenceTimeout)
			if g := v.PersistenceGranularity; g > 0 {
				switch {
				case !six && g < 32:
					fmt.Fprintf(w, " mask %s", netmask4(g))
				case six && g < 128:
					fmt.Fprintf(w, " mask %d", g)
				}
			}
		}
		if v.OnePacket {
			w.WriteString(" ops")
		}
		w.WriteString(quorum + "\n")
	}
	for i := range v.Dests {
		d := &v.Dests[i]
		dname := addrPort(d.Addr, d.Port)
		if !d.Addr.Is6() || d.Addr.Is4In6() {
			dname = truncate(dname, 28)
		}
		marker := destMarker(d)
		if opts.Stats {
			fmt.Fprintf(w, "  -> %-28s", dname)
			writeCounters(w, d.Counters)
			if marker != "" {
				w.WriteString("  " + marker)
			}
			w.WriteString("\n")
			continue
		}
		weight := "-"
		if d.Programmed {
			weight = strconv.Itoa(d.Weight)
		}
		if opts.TunInfo {
			fmt.Fprintf(w, "  -> %-28s %-7s %-13s %-6s %-10d %-10d", dname, forwardName(d.Method), tunnelInfo(d.Tunnel), weight, d.ActiveConn, d.InactConn)
		} else {
			fmt.Fprintf(w, "  -> %-28s %-7s %-6s %-10d %-10d", dname, forwardName(d.Method), weight, d.ActiveConn, d.InactConn)
		}
		if marker != "" {
			w.WriteString(" " + marker)
		}
		w.WriteString("\n")
	}
}

// destMarker is the health marker after a real server's columns; empty
// for an active one.
func destMarker(d *DestView) string {
	switch d.State {
	case StateActive:
		return ""
	case StateInhibited:
		return "DOWN inhibited"
	case StateDown:
		return "DOWN"
	case StateStandby:
		return "standby (sorry server in use)"
	case StateSorry:
		return "sorry server"
	case StateSorryIdle:
		return "sorry server (idle)"
	case StateSorryOff:
		return "sorry server (off)"
	}
	return d.State
}

// forwardName is ipvsadm's name for a forwarding method.
func forwardName(method string) string {
	switch method {
	case "DR":
		return "Route"
	case "NAT":
		return "Masq"
	case "TUN":
		return "Tunnel"
	}
	return method
}

// tunnelInfo is ipvsadm 1.31's TunnelInfo column: "ipip", "gue:PORT:C" or
// "gre:C" with C "-c" (nocsum), "+c" (csum) or "r+c" (remcsum); "n/a"
// for a server that is not TUN.
func tunnelInfo(t *TunnelView) string {
	if t == nil {
		return "n/a"
	}
	csum := map[string]string{TunnelNoCsum: "-c", TunnelCsum: "+c", TunnelRemCsum: "r+c"}[t.Csum]
	switch t.Type {
	case TunnelIPIP:
		return "ipip"
	case TunnelGUE:
		return fmt.Sprintf("gue:%d:%s", t.Port, csum)
	}
	return t.Type + ":" + csum
}

// addrPort formats like ipvsadm -n: 192.0.2.1:80, [2001:db8::1]:80.
func addrPort(a netip.Addr, port uint16) string {
	return netip.AddrPortFrom(a.Unmap(), port).String()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func netmask4(bits int) string {
	m := ^uint32(0) << (32 - bits)
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}

func writeCounters(w *bufio.Writer, c Counters) {
	for _, n := range []uint64{c.Conns, c.InPkts, c.OutPkts, c.InBytes, c.OutBytes} {
		w.WriteString(largeNum(n))
	}
}

// largeNum is ipvsadm's print_largenum: 9 columns, right-aligned, scaled
// to K/M/G/T above 100 million.
func largeNum(n uint64) string {
	switch {
	case n < 100_000_000:
		return fmt.Sprintf("%9d", n)
	case n < 1_000_000_000:
		return fmt.Sprintf("%8dK", n/1_000)
	case n < 100_000_000_000:
		return fmt.Sprintf("%8dM", n/1_000_000)
	case n < 100_000_000_000_000:
		return fmt.Sprintf("%8dG", n/1_000_000_000)
	}
	return fmt.Sprintf("%8dT", n/1_000_000_000_000)
}

func sortDestViews(ds []DestView) {
	slices.SortFunc(ds, func(a, b DestView) int {
		return compareDests(Dest{Addr: a.Addr, Port: a.Port}, Dest{Addr: b.Addr, Port: b.Port})
	})
}
