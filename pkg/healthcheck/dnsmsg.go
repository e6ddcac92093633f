package healthcheck

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// A minimal DNS message codec (RFC 1035 §4): enough to build one query and
// to check that a reply answers it.
//
// Header, 12 bytes:
//
//	0       2       4        6        8        10       12
//	+-------+-------+--------+--------+--------+--------+
//	|  ID   | flags | QDCOUNT| ANCOUNT| NSCOUNT| ARCOUNT|
//	+-------+-------+--------+--------+--------+--------+
//
//	flags: QR(15) Opcode(14-11) AA(10) TC(9) RD(8) RA(7) Z(6-4) RCODE(3-0)
//
// Question: QNAME (length-prefixed labels ending in a zero byte, or a
// compression pointer in replies), QTYPE (2 bytes), QCLASS (2 bytes).

// DNS record types DNS_CHECK accepts (keepalived's `type`).
var dnsTypes = map[string]uint16{
	"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28,
}

const (
	dnsHeaderLen = 12
	dnsClassIN   = 1
	dnsFlagQR    = 1 << 15
	dnsFlagRD    = 1 << 8
	dnsMaxName   = 255
)

// Errors of the DNS codec.
var (
	ErrDNSName  = errors.New("dns: bad name")
	ErrDNSReply = errors.New("dns: reply does not answer the query")
)

// DNSType returns the code of a record type name (A, NS, CNAME, SOA, MX,
// TXT, AAAA), case-insensitively.
func DNSType(name string) (uint16, bool) {
	t, ok := dnsTypes[strings.ToUpper(name)]
	return t, ok
}

// dnsQuestion is the one question of a DNS_CHECK query.
type dnsQuestion struct {
	Name  string // "." or "example.com." (the trailing dot is optional)
	Type  uint16
	Class uint16
}

// dnsHeader is the fixed part of a message.
type dnsHeader struct {
	ID                                 uint16
	Flags                              uint16
	QDCount, ANCount, NSCount, ARCount uint16
}

// appendDNSName appends name in wire form.
func appendDNSName(b []byte, name string) ([]byte, error) {
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return append(b, 0), nil
	}
	if len(name)+2 > dnsMaxName {
		return nil, fmt.Errorf("%w: %d bytes long", ErrDNSName, len(name))
	}
	for _, label := range strings.Split(name, ".") {
		if len(label) == 0 || len(label) > 63 {
			return nil, fmt.Errorf("%w: label %q in %q", ErrDNSName, label, name)
		}
		b = append(b, byte(len(label)))
		b = append(b, label...)
	}
	return append(b, 0), nil
}

// marshalDNSQuery builds a query with RD set and one question.
func marshalDNSQuery(id uint16, q dnsQuestion) ([]byte, error) {
	b := make([]byte, dnsHeaderLen, dnsHeaderLen+len(q.Name)+6)
	binary.BigEndian.PutUint16(b[0:2], id)
	binary.BigEndian.PutUint16(b[2:4], dnsFlagRD)
	binary.BigEndian.PutUint16(b[4:6], 1) // QDCOUNT
	b, err := appendDNSName(b, q.Name)
	if err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint16(b, q.Type)
	b = binary.BigEndian.AppendUint16(b, q.Class)
	return b, nil
}

// parseDNSHeader reads the fixed header.
func parseDNSHeader(b []byte) (dnsHeader, error) {
	if len(b) < dnsHeaderLen {
		return dnsHeader{}, fmt.Errorf("dns header: %w", io.ErrUnexpectedEOF)
	}
	return dnsHeader{
		ID:      binary.BigEndian.Uint16(b[0:2]),
		Flags:   binary.BigEndian.Uint16(b[2:4]),
		QDCount: binary.BigEndian.Uint16(b[4:6]),
		ANCount: binary.BigEndian.Uint16(b[6:8]),
		NSCount: binary.BigEndian.Uint16(b[8:10]),
		ARCount: binary.BigEndian.Uint16(b[10:12]),
	}, nil
}

// parseDNSName reads a (possibly compressed) name at off and returns it
// in dotted form with a trailing dot, and the offset after it in b.
func parseDNSName(b []byte, off int) (string, int, error) {
	var (
		sb    strings.Builder
		end   = -1 // offset after the name where it started, once a pointer was followed
		jumps int
	)
	for {
		if off >= len(b) {
			return "", 0, fmt.Errorf("dns name: %w", io.ErrUnexpectedEOF)
		}
		l := int(b[off])
		switch {
		case l == 0:
			if end < 0 {
				end = off + 1
			}
			if sb.Len() == 0 {
				return ".", end, nil
			}
			return sb.String(), end, nil
		case l&0xc0 == 0xc0:
			if off+1 >= len(b) {
				return "", 0, fmt.Errorf("dns name pointer: %w", io.ErrUnexpectedEOF)
			}
			if jumps++; jumps > 32 {
				return "", 0, fmt.Errorf("%w: compression loop", ErrDNSName)
			}
			if end < 0 {
				end = off + 2
			}
			off = int(binary.BigEndian.Uint16(b[off:off+2]) & 0x3fff)
		case l&0xc0 != 0:
			return "", 0, fmt.Errorf("%w: label type %#x", ErrDNSName, l&0xc0)
		default:
			if off+1+l > len(b) {
				return "", 0, fmt.Errorf("dns label: %w", io.ErrUnexpectedEOF)
			}
			sb.Write(b[off+1 : off+1+l])
			sb.WriteByte('.')
			if sb.Len() > dnsMaxName {
				return "", 0, fmt.Errorf("%w: longer than %d bytes", ErrDNSName, dnsMaxName)
			}
			off += 1 + l
		}
	}
}

// parseDNSQuestion reads one question at off.
func parseDNSQuestion(b []byte, off int) (dnsQuestion, int, error) {
	name, off, err := parseDNSName(b, off)
	if err != nil {
		return dnsQuestion{}, 0, err
	}
	if off+4 > len(b) {
		return dnsQuestion{}, 0, fmt.Errorf("dns question: %w", io.ErrUnexpectedEOF)
	}
	q := dnsQuestion{
		Name:  name,
		Type:  binary.BigEndian.Uint16(b[off : off+2]),
		Class: binary.BigEndian.Uint16(b[off+2 : off+4]),
	}
	return q, off + 4, nil
}

// checkDNSReply verifies that reply answers the query (id, q): QR set,
// RCODE NOERROR, not truncated away, the same single question, and at
// least one answer record.
func checkDNSReply(reply []byte, id uint16, q dnsQuestion) error {
	h, err := parseDNSHeader(reply)
	if err != nil {
		return err
	}
	switch {
	case h.ID != id:
		return fmt.Errorf("%w: id %#04x, want %#04x", ErrDNSReply, h.ID, id)
	case h.Flags&dnsFlagQR == 0:
		return fmt.Errorf("%w: not a response", ErrDNSReply)
	case h.Flags&0xf != 0:
		return fmt.Errorf("%w: rcode %d", ErrDNSReply, h.Flags&0xf)
	case h.QDCount != 1:
		return fmt.Errorf("%w: %d questions", ErrDNSReply, h.QDCount)
	}
	got, _, err := parseDNSQuestion(reply, dnsHeaderLen)
	if err != nil {
		return err
	}
	want := strings.TrimSuffix(q.Name, ".") + "."
	if !strings.EqualFold(got.Name, want) || got.Type != q.Type || got.Class != q.Class {
		return fmt.Errorf("%w: question %s/%d/%d, want %s/%d/%d", ErrDNSReply, got.Name, got.Type, got.Class, want, q.Type, q.Class)
	}
	if h.ANCount == 0 {
		return fmt.Errorf("%w: no answer records", ErrDNSReply)
	}
	return nil
}
