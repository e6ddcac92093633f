package healthcheck

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

func FuzzReadHTTPResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 404\n\nbody"))
	f.Add([]byte("garbage"))
	f.Add([]byte("HTTP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := readHTTPResponse(bufio.NewReader(bytes.NewReader(b)), true)
		if err != nil {
			if !errors.Is(err, ErrBadReply) && !errors.Is(err, ErrTimeout) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if resp.status < 100 || resp.status > 999 || len(resp.md5) != 16 {
			t.Fatalf("accepted reply with status %d md5 %x", resp.status, resp.md5)
		}
	})
}

func FuzzDNSReply(f *testing.F) {
	q := dnsQuestion{Name: "www.example.com", Type: 1, Class: dnsClassIN}
	query, err := marshalDNSQuery(0x1234, q)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(dnsReply(query, 0, 1, 0))
	f.Add(dnsReply(query, 3, 0, 0))
	f.Add([]byte{0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0, 12})
	f.Fuzz(func(t *testing.T, b []byte) {
		// Must never panic; an accepted reply must echo the question.
		if err := checkDNSReply(b, 0x1234, q); err == nil {
			got, _, err := parseDNSQuestion(b, dnsHeaderLen)
			if err != nil || !strings.EqualFold(got.Name, "www.example.com.") {
				t.Fatalf("accepted reply with question %+v, %v", got, err)
			}
		}
	})
}

func FuzzDNSName(f *testing.F) {
	for _, s := range []string{".", "example.com", "a.b.c.", strings.Repeat("x", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		msg, err := marshalDNSQuery(7, dnsQuestion{Name: name, Type: 6, Class: 1})
		if err != nil {
			return
		}
		q, end, err := parseDNSQuestion(msg, dnsHeaderLen)
		if err != nil || end != len(msg) {
			t.Fatalf("round trip of %q: %+v end %d/%d: %v", name, q, end, len(msg), err)
		}
		want := strings.TrimSuffix(name, ".") + "."
		if q.Name != want || q.Type != 6 || q.Class != 1 {
			t.Fatalf("round trip of %q gave %+v", name, q)
		}
	})
}

func FuzzParseHexPattern(f *testing.F) {
	for _, s := range []string{"Ab12f 3 456 546443123", "xX 1x", "", "zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		data, mask, err := ParseHexPattern(s)
		if err != nil {
			return
		}
		if len(data) != len(mask) {
			t.Fatalf("%q: %d data bytes, %d mask bytes", s, len(data), len(mask))
		}
		if !matchMasked(data, data, mask) {
			t.Fatalf("%q: pattern does not match itself", s)
		}
	})
}

func FuzzSMTPReply(f *testing.F) {
	f.Add([]byte("220 hi\r\n"))
	f.Add([]byte("250-a\r\n250 b\r\n"))
	f.Add([]byte("2x0\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		code, err := readSMTPReply(bufio.NewReader(bytes.NewReader(b)))
		if err == nil && (code < 0 || code > 999) {
			t.Fatalf("code %d", code)
		}
	})
}
