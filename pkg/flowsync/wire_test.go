package flowsync

import (
	"errors"
	"io"
	"net/netip"
	"reflect"
	"strconv"
	"testing"

	"github.com/xdpvip/xdpvip/pkg/dataplane"
)

func flow(c, v, r string) dataplane.Flow {
	return dataplane.Flow{Client: netip.MustParseAddrPort(c), VIP: netip.MustParseAddrPort(v), Proto: 6, Real: netip.MustParseAddrPort(r)}
}

func TestRoundTrip(t *testing.T) {
	in := []dataplane.Flow{
		flow("10.78.50.2:40001", "10.78.9.1:80", "10.78.1.21:80"),
		flow("[2001:db8::2]:5000", "[2001:db8:9::1]:443", "[2001:db8:1::21]:443"),
		flow("10.0.0.1:1", "[2001:db8::1]:2", "10.0.0.3:3"), // mixed families: skipped
	}
	b, used := Marshal(in)
	if used != 3 || len(b) != headerLen+2*recordLen {
		t.Fatalf("used %d, %d bytes", used, len(b))
	}
	out, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in[:2]) {
		t.Errorf("got %v, want %v", out, in[:2])
	}
	// The byte layout: record 0's client port at offset 6+18.
	if b[6+18] != 0x9c || b[6+19] != 0x41 || b[6+1] != 4 || b[6+2] != 10 {
		t.Errorf("layout: % x", b[6:6+24])
	}
}

func TestMarshalSplits(t *testing.T) {
	var in []dataplane.Flow
	for i := range 30 {
		in = append(in, flow("10.0.0.1:"+strconv.Itoa(1000+i), "10.0.0.2:80", "10.0.0.3:80"))
	}
	b, used := Marshal(in)
	if used != MaxRecords || b[5] != MaxRecords {
		t.Fatalf("used %d, count %d", used, b[5])
	}
	b2, used2 := Marshal(in[used:])
	if used2 != 6 || b2[5] != 6 {
		t.Fatalf("second datagram: used %d", used2)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	good, _ := Marshal([]dataplane.Flow{flow("10.0.0.1:1", "10.0.0.2:80", "10.0.0.3:80")})
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"short":       {good[:3], io.ErrUnexpectedEOF},
		"magic":       {mut(func(b []byte) []byte { b[0] = 'Y'; return b }), ErrBadMagic},
		"version":     {mut(func(b []byte) []byte { b[4] = 2; return b }), ErrBadVersion},
		"too many":    {mut(func(b []byte) []byte { b[5] = MaxRecords + 1; return b }), ErrBadRecord},
		"truncated":   {good[:len(good)-1], io.ErrUnexpectedEOF},
		"trailing":    {append(append([]byte(nil), good...), 0), ErrBadRecord},
		"family":      {mut(func(b []byte) []byte { b[7] = 5; return b }), ErrBadRecord},
		"v4 trailing": {mut(func(b []byte) []byte { b[6+2+5] = 1; return b }), ErrBadRecord},
	} {
		if _, err := Unmarshal(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

// FuzzUnmarshal: no input panics; what decodes re-encodes to the same bytes.
func FuzzUnmarshal(f *testing.F) {
	good, _ := Marshal([]dataplane.Flow{flow("10.0.0.1:1", "10.0.0.2:80", "10.0.0.3:80"),
		flow("[2001:db8::2]:5000", "[2001:db8:9::1]:443", "[2001:db8:1::21]:443")})
	f.Add(good)
	f.Add([]byte("XVFS\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		flows, err := Unmarshal(b)
		if err != nil {
			return
		}
		again, used := Marshal(flows)
		if used != len(flows) || string(again) != string(b) {
			t.Fatalf("re-encoding differs:\n% x\n% x", b, again)
		}
	})
}
