package healthcheck

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
)

// DefaultDNSPort is DNS_CHECK's default connect_port.
const DefaultDNSPort = 53

// DNSSpec is a DNS_CHECK: one query over UDP that must be answered.
type DNSSpec struct {
	Target Target
	// Type is the query type: A, NS, CNAME, SOA (default), MX, TXT, AAAA.
	Type string
	// Name is the name queried; default "." as keepalived.
	Name string
}

// DNSCheck is the DNS_CHECK checker.
type DNSCheck struct {
	spec DNSSpec
	q    dnsQuestion
}

// NewDNSCheck validates spec and returns its checker.
func NewDNSCheck(spec DNSSpec) (*DNSCheck, error) {
	if err := spec.Target.validate(); err != nil {
		return nil, err
	}
	if spec.Type == "" {
		spec.Type = "SOA"
	}
	if spec.Name == "" {
		spec.Name = "."
	}
	t, ok := DNSType(spec.Type)
	if !ok {
		return nil, fmt.Errorf("%w: DNS type %q", ErrSpec, spec.Type)
	}
	q := dnsQuestion{Name: spec.Name, Type: t, Class: dnsClassIN}
	if _, err := marshalDNSQuery(0, q); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	return &DNSCheck{spec: spec, q: q}, nil
}

// Check sends the query and waits for a reply that answers it; replies
// with another id are skipped.
func (c *DNSCheck) Check(ctx context.Context) error {
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	query, err := marshalDNSQuery(id, c.q)
	if err != nil {
		return err
	}
	conn, err := c.spec.Target.dial(ctx, "udp")
	if err != nil {
		return err
	}
	defer conn.Close()
	defer withDeadline(ctx, conn)()
	if _, err := conn.Write(query); err != nil {
		return udpError("dns write", err)
	}
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return udpError("dns read", err)
		}
		if h, err := parseDNSHeader(buf[:n]); err == nil && h.ID != id {
			continue // a late reply to an earlier query
		}
		if err := checkDNSReply(buf[:n], id, c.q); err != nil {
			return fmt.Errorf("%w: %w", ErrBadReply, err)
		}
		return nil
	}
}

// udpError classifies an error on a connected UDP socket: an ICMP error
// (port or host unreachable) is ErrConnect, a deadline ErrTimeout.
func udpError(what string, err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return fmt.Errorf("%w: %s: %w", ErrConnect, what, err)
	}
	return ioError(what, err)
}
