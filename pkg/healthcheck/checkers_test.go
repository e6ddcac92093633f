package healthcheck

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdpvip/xdpvip/internal/testnet"
)

// runCheck runs c with a connect_timeout and returns its error and how
// long it took.
func runCheck(c Checker, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err := c.Check(ctx)
	return time.Since(start), err
}

// silent accepts and never answers.
func silent(c net.Conn, _ *tcpServer) {
	buf := make([]byte, 1024)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

func TestTCPCheck(t *testing.T) {
	up := startTCP(t, nil)
	tests := []struct {
		name string
		addr netip.AddrPort
		want error
	}{
		{"listening", up.addr(), nil},
		{"refused", closedTCPPort(t), ErrConnect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewTCPCheck(TCPSpec{Target: Target{Addr: tt.addr}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := runCheck(c, 2*time.Second); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestTCPCheckBindTo(t *testing.T) {
	var mu sync.Mutex
	var from netip.AddrPort
	srv := startTCP(t, func(c net.Conn, _ *tcpServer) {
		mu.Lock()
		from = c.RemoteAddr().(*net.TCPAddr).AddrPort()
		mu.Unlock()
	})
	port := closedTCPPort(t).Port()
	c, err := NewTCPCheck(TCPSpec{Target: Target{Addr: srv.addr(), BindTo: netip.MustParseAddr("127.0.0.2"), BindPort: port}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runCheck(c, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	testnet.Eventually(t, 2*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if from != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port) {
			return fmt.Errorf("connection came from %v", from)
		}
		return nil
	})
}

// TestTCPCheckConnectTimeout connects to an address with no host behind it
// inside a throw-away namespace: the SYN is never answered and the check
// must give up at connect_timeout.
func TestTCPCheckConnectTimeout(t *testing.T) {
	testnet.Require(t)
	n := testnet.New(t)
	h := n.AddHost("lb", "192.0.2.1/24")
	c, err := NewTCPCheck(TCPSpec{Target: Target{Addr: netip.MustParseAddrPort("192.0.2.99:80")}})
	if err != nil {
		t.Fatal(err)
	}
	var cerr error
	var took time.Duration
	h.MustDo(func() error {
		took, cerr = runCheck(c, 500*time.Millisecond)
		return nil
	})
	if !errors.Is(cerr, ErrConnect) {
		t.Fatalf("Check = %v, want ErrConnect", cerr)
	}
	if took < 400*time.Millisecond || took > 2*time.Second {
		t.Fatalf("Check took %v with a 500ms connect_timeout", took)
	}
}

// httpHandler answers every request with status and body (HTTP/1.0 style:
// close after the body), and records the request head.
func httpHandler(status int, body string) func(net.Conn, *tcpServer) {
	return func(c net.Conn, s *tcpServer) {
		head := readHead(bufio.NewReader(c))
		s.record(head)
		fmt.Fprintf(c, "HTTP/1.0 %d X\r\nContent-Type: text/html\r\n\r\n%s", status, body)
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestHTTPCheck(t *testing.T) {
	const body = "<html>rs1</html>\n"
	ok200 := startTCP(t, httpHandler(200, body))
	err500 := startTCP(t, httpHandler(500, "oops"))
	hang := startTCP(t, silent)
	garbage := startTCP(t, func(c net.Conn, _ *tcpServer) { c.Write([]byte("SSH-2.0-OpenSSH\r\n\r\n")) })
	chunked := startTCP(t, func(c net.Conn, _ *tcpServer) {
		readHead(bufio.NewReader(c))
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n<html>\r\n%x\r\n%s\r\n0\r\n\r\n", len(body)-6, body[6:])
	})
	tests := []struct {
		name    string
		addr    netip.AddrPort
		url     URLSpec
		want    error
		maxTime time.Duration
	}{
		{name: "200 default codes", addr: ok200.addr(), url: URLSpec{Path: "/"}},
		{name: "right digest", addr: ok200.addr(), url: URLSpec{Path: "/", Digest: md5hex(body)}},
		{name: "right digest upper case", addr: ok200.addr(), url: URLSpec{Path: "/", Digest: strings.ToUpper(md5hex(body))}},
		{name: "wrong digest", addr: ok200.addr(), url: URLSpec{Path: "/", Digest: md5hex("other")}, want: ErrBadReply},
		{name: "500 is down by default", addr: err500.addr(), url: URLSpec{Path: "/"}, want: ErrBadReply},
		{name: "500 listed", addr: err500.addr(), url: URLSpec{Path: "/", StatusCodes: []StatusRange{{200, 200}, {500, 503}}}},
		{name: "200 not listed", addr: ok200.addr(), url: URLSpec{Path: "/", StatusCodes: []StatusRange{{301, 302}}}, want: ErrBadReply},
		{name: "regex match", addr: ok200.addr(), url: URLSpec{Path: "/", Regex: regexp.MustCompile(`rs\d`)}},
		{name: "regex no_match", addr: ok200.addr(), url: URLSpec{Path: "/", Regex: regexp.MustCompile(`rs\d`), RegexNoMatch: true}, want: ErrBadReply},
		{name: "chunked body digest", addr: chunked.addr(), url: URLSpec{Path: "/", Digest: md5hex(body)}},
		{name: "refused", addr: closedTCPPort(t), url: URLSpec{Path: "/"}, want: ErrConnect},
		{name: "accepts, never answers", addr: hang.addr(), url: URLSpec{Path: "/"}, want: ErrTimeout, maxTime: 2 * time.Second},
		{name: "not HTTP", addr: garbage.addr(), url: URLSpec{Path: "/"}, want: ErrBadReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewHTTPCheck(HTTPSpec{Target: Target{Addr: tt.addr}, URLs: []URLSpec{tt.url}})
			if err != nil {
				t.Fatal(err)
			}
			took, err := runCheck(c, 500*time.Millisecond)
			if (tt.want == nil) != (err == nil) || !errors.Is(err, tt.want) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
			if tt.maxTime > 0 && took > tt.maxTime {
				t.Fatalf("Check took %v, bound is connect_timeout 500ms", took)
			}
		})
	}
}

func TestHTTPCheckRequest(t *testing.T) {
	srv := startTCP(t, httpHandler(200, "x"))
	tests := []struct {
		name string
		spec HTTPSpec
		want []string // request head lines
	}{
		{name: "default 1.0, host is the address",
			spec: HTTPSpec{URLs: []URLSpec{{Path: "/index.html"}}},
			want: []string{"GET /index.html HTTP/1.0", "User-Agent: KeepAliveClient", "Host: " + srv.addr().String()}},
		{name: "virtualhost from the url wins",
			spec: HTTPSpec{Virtualhost: "vs.example", URLs: []URLSpec{{Path: "/a", Virtualhost: "www.example"}}},
			want: []string{"GET /a HTTP/1.0", "Host: www.example"}},
		{name: "1.1 closes",
			spec: HTTPSpec{Protocol: HTTP11, Virtualhost: "vs.example", URLs: []URLSpec{{Path: "/"}}},
			want: []string{"GET / HTTP/1.1", "Host: vs.example", "Connection: close"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(srv.requests())
			tt.spec.Target = Target{Addr: srv.addr()}
			c, err := NewHTTPCheck(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := runCheck(c, 2*time.Second); err != nil {
				t.Fatal(err)
			}
			reqs := srv.requests()
			if len(reqs) != before+1 {
				t.Fatalf("%d requests, want 1", len(reqs)-before)
			}
			for _, l := range tt.want {
				if !strings.Contains(reqs[before], l+"\r\n") {
					t.Errorf("request %q lacks %q", reqs[before], l)
				}
			}
		})
	}
}

// TestHTTPDigestMatchesGenhash checks that our digest is the one
// keepalived's genhash prints for the same page.
func TestHTTPDigestMatchesGenhash(t *testing.T) {
	genhash, err := exec.LookPath("genhash")
	if err != nil {
		t.Skip("genhash (keepalived) not installed")
	}
	body := strings.Repeat("keepalived genhash compatibility\n", 100)
	srv := startTCP(t, httpHandler(200, body))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, genhash, "-s", srv.addr().Addr().String(), "-p", fmt.Sprint(srv.addr().Port()), "-u", "/index.html").CombinedOutput()
	if err != nil {
		t.Fatalf("genhash: %v: %s", err, out)
	}
	// Old genhash prints "MD5SUM = <hex>", 2.x prints the bare hex.
	m := regexp.MustCompile(`(?m)^(?:MD5SUM = )?([0-9a-f ]{32,})\s*$`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no MD5 in genhash output %q", out)
	}
	want := strings.ReplaceAll(string(m[1]), " ", "")
	c, err := NewHTTPCheck(HTTPSpec{Target: Target{Addr: srv.addr()}, URLs: []URLSpec{{Path: "/index.html", Digest: want}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runCheck(c, 2*time.Second); err != nil {
		t.Fatalf("digest genhash printed (%s) fails our check: %v", want, err)
	}
	if want != md5hex(body) {
		t.Errorf("genhash %s, md5 of body %s", want, md5hex(body))
	}
}

func TestSSLGetCheck(t *testing.T) {
	var mu sync.Mutex
	var sni []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "www.example" {
			w.WriteHeader(http.StatusMisdirectedRequest)
			return
		}
		fmt.Fprint(w, "secure")
	}))
	srv.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		sni = append(sni, h.ServerName)
		mu.Unlock()
		return nil, nil
	}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := netip.MustParseAddrPort(srv.Listener.Addr().String())
	tests := []struct {
		name    string
		sni     bool
		digest  string
		want    error
		wantSNI string
	}{
		{name: "self-signed accepted, SNI sent", sni: true, digest: md5hex("secure"), wantSNI: "www.example"},
		{name: "no SNI without enable_sni", sni: false, wantSNI: ""},
		{name: "wrong digest", sni: true, digest: md5hex("x"), want: ErrBadReply, wantSNI: "www.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewHTTPCheck(HTTPSpec{Target: Target{Addr: addr}, TLS: true, EnableSNI: tt.sni, Virtualhost: "www.example",
				URLs: []URLSpec{{Path: "/", Digest: tt.digest}}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := runCheck(c, 2*time.Second); (tt.want == nil) != (err == nil) || !errors.Is(err, tt.want) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
			mu.Lock()
			got := sni[len(sni)-1]
			mu.Unlock()
			if got != tt.wantSNI {
				t.Errorf("SNI %q, want %q", got, tt.wantSNI)
			}
		})
	}
	// A plain-TCP server that never speaks TLS is bounded by the timeout.
	hang := startTCP(t, silent)
	c, err := NewHTTPCheck(HTTPSpec{Target: Target{Addr: hang.addr()}, TLS: true, URLs: []URLSpec{{Path: "/"}}})
	if err != nil {
		t.Fatal(err)
	}
	if took, err := runCheck(c, 300*time.Millisecond); !errors.Is(err, ErrTimeout) || took > 2*time.Second {
		t.Fatalf("hung TLS server: %v after %v", err, took)
	}
}

func TestSMTPCheck(t *testing.T) {
	smtp := func(greet string) func(net.Conn, *tcpServer) {
		return func(c net.Conn, s *tcpServer) {
			r := bufio.NewReader(c)
			fmt.Fprint(c, greet)
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				s.record(strings.TrimSpace(l))
				switch {
				case strings.HasPrefix(l, "HELO "):
					fmt.Fprint(c, "250-mx.example\r\n250 hello\r\n")
				case strings.HasPrefix(l, "QUIT"):
					fmt.Fprint(c, "221 bye\r\n")
					return
				}
			}
		}
	}
	good := startTCP(t, smtp("220 mx.example ESMTP\r\n"))
	busy := startTCP(t, smtp("554 go away\r\n"))
	hang := startTCP(t, silent)
	tests := []struct {
		name string
		addr netip.AddrPort
		want error
	}{
		{"220 HELO 250 QUIT 221", good.addr(), nil},
		{"554 greeting", busy.addr(), ErrBadReply},
		{"silent", hang.addr(), ErrTimeout},
		{"refused", closedTCPPort(t), ErrConnect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewSMTPCheck(SMTPSpec{Target: Target{Addr: tt.addr}, HeloName: "lvs1.example"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := runCheck(c, 500*time.Millisecond); (tt.want == nil) != (err == nil) || !errors.Is(err, tt.want) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
	if got := strings.Join(good.requests(), "|"); got != "HELO lvs1.example|QUIT" {
		t.Errorf("SMTP dialogue %q", got)
	}
}

func TestMiscCheck(t *testing.T) {
	dir := t.TempDir()
	exit := filepath.Join(dir, "exit.sh")
	if err := os.WriteFile(exit, []byte("#!/bin/sh\nexit \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	hang := filepath.Join(dir, "hang.sh")
	if err := os.WriteFile(hang, []byte("#!/bin/sh\nsleep 300 &\nwait\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		spec       MiscSpec
		want       error
		wantWeight int
		wantDyn    bool
	}{
		{name: "exit 0", spec: MiscSpec{Path: exit + " 0"}},
		{name: "exit 1", spec: MiscSpec{Path: exit + " 1"}, want: ErrScript},
		{name: "exit 7 static is down", spec: MiscSpec{Path: exit + " 7"}, want: ErrScript},
		{name: "exit 0 dynamic keeps weight", spec: MiscSpec{Path: exit + " 0", Dynamic: true}},
		{name: "exit 1 dynamic is down", spec: MiscSpec{Path: exit + " 1", Dynamic: true}, want: ErrScript},
		{name: "exit 12 dynamic is weight 10", spec: MiscSpec{Path: exit + " 12", Dynamic: true}, wantWeight: 10, wantDyn: true},
		{name: "exit 2 dynamic is weight 0", spec: MiscSpec{Path: exit + " 2", Dynamic: true}, wantWeight: 0, wantDyn: true},
		{name: "exit 255 dynamic is weight 253", spec: MiscSpec{Path: exit + " 255", Dynamic: true}, wantWeight: 253, wantDyn: true},
		{name: "missing script", spec: MiscSpec{Path: filepath.Join(dir, "nope")}, want: ErrScript},
		{name: "hung script killed at misc_timeout", spec: MiscSpec{Path: hang, Timeout: 300 * time.Millisecond}, want: ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewMiscCheck(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			w, dyn, err := c.CheckWeight(context.Background())
			if (tt.want == nil) != (err == nil) || !errors.Is(err, tt.want) {
				t.Fatalf("CheckWeight = %v, want %v", err, tt.want)
			}
			if w != tt.wantWeight || dyn != tt.wantDyn {
				t.Errorf("weight %d dynamic %v, want %d %v", w, dyn, tt.wantWeight, tt.wantDyn)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
	if _, err := NewMiscCheck(MiscSpec{Path: "'unterminated"}); !errors.Is(err, ErrSpec) {
		t.Errorf("bad misc_path: %v, want ErrSpec", err)
	}
}

// dnsReply builds a reply to query with the given rcode and answer count,
// optionally with another id.
func dnsReply(query []byte, rcode uint16, answers uint16, idDelta uint16) []byte {
	r := append([]byte(nil), query...)
	binary.BigEndian.PutUint16(r[0:2], binary.BigEndian.Uint16(r[0:2])+idDelta)
	binary.BigEndian.PutUint16(r[2:4], dnsFlagQR|dnsFlagRD|rcode)
	binary.BigEndian.PutUint16(r[6:8], answers)
	for range answers {
		// NAME = pointer to the question name, TYPE, CLASS, TTL, RDLENGTH=4, RDATA
		r = append(r, 0xc0, 12)
		r = append(r, query[len(query)-4:]...)
		r = append(r, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1)
	}
	return r
}

func TestDNSCheck(t *testing.T) {
	good := startUDP(t, func(q []byte) []byte { return dnsReply(q, 0, 1, 0) })
	nx := startUDP(t, func(q []byte) []byte { return dnsReply(q, 3, 0, 0) })
	empty := startUDP(t, func(q []byte) []byte { return dnsReply(q, 0, 0, 0) })
	otherID := startUDP(t, func(q []byte) []byte { return dnsReply(q, 0, 1, 1) })
	mute := startUDP(t, func([]byte) []byte { return nil })
	junk := startUDP(t, func([]byte) []byte { return []byte{1, 2, 3} })
	tests := []struct {
		name string
		addr netip.AddrPort
		want error
	}{
		{"answer", good, nil},
		{"NXDOMAIN", nx, ErrBadReply},
		{"no answer records", empty, ErrBadReply},
		{"only replies with another id", otherID, ErrTimeout},
		{"silent", mute, ErrTimeout},
		{"short reply", junk, ErrBadReply},
		{"port unreachable", closedUDPPort(t), ErrConnect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewDNSCheck(DNSSpec{Target: Target{Addr: tt.addr}, Type: "a", Name: "www.example.com"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := runCheck(c, 300*time.Millisecond); (tt.want == nil) != (err == nil) || !errors.Is(err, tt.want) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := NewDNSCheck(DNSSpec{Target: Target{Addr: good}, Type: "PTR"}); !errors.Is(err, ErrSpec) {
		t.Errorf("type PTR: %v, want ErrSpec", err)
	}
}

func TestUDPCheck(t *testing.T) {
	echo := startUDP(t, func(q []byte) []byte { return q })
	fixed := startUDP(t, func([]byte) []byte { return []byte{0xab, 0x12, 0x34, 0x56} })
	mute := startUDP(t, func([]byte) []byte { return nil })
	pattern, mask, err := ParseHexPattern("AB 1x 34")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec UDPSpec
		want error
	}{
		{name: "echo, reply required", spec: UDPSpec{Target: Target{Addr: echo}, Payload: []byte("ping"), RequireReply: true}},
		{name: "silent, no reply required", spec: UDPSpec{Target: Target{Addr: mute}}},
		{name: "silent, reply required", spec: UDPSpec{Target: Target{Addr: mute}, RequireReply: true}, want: ErrTimeout},
		{name: "port unreachable", spec: UDPSpec{Target: Target{Addr: closedUDPPort(t)}}, want: ErrConnect},
		{name: "pattern matches", spec: UDPSpec{Target: Target{Addr: fixed}, RequireReply: true, ReplyPattern: pattern, ReplyMask: mask}},
		{name: "pattern differs", spec: UDPSpec{Target: Target{Addr: fixed}, RequireReply: true, ReplyPattern: []byte{0xab, 0x13}, ReplyMask: []byte{0xff, 0xff}}, want: ErrBadReply},
		{name: "reply too short", spec: UDPSpec{Target: Target{Addr: fixed}, RequireReply: true, MinReplyLength: 5}, want: ErrBadReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewUDPCheck(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := runCheck(c, 300*time.Millisecond); (tt.want == nil) != (err == nil) || !errors.Is(err, tt.want) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseHexString(t *testing.T) {
	got, err := ParseHexString("Ab12f 3 456 546443123")
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0xAB, 0x12, 0x0F, 0x03, 0x45, 0x06, 0x54, 0x64, 0x43, 0x12, 0x03}
	if string(got) != string(want) {
		t.Fatalf("got % x, want % x (keepalived's example)", got, want)
	}
	for _, bad := range []string{"zz", "1x"} {
		if _, err := ParseHexString(bad); !errors.Is(err, ErrSpec) {
			t.Errorf("ParseHexString(%q) = %v, want ErrSpec", bad, err)
		}
	}
}

func TestPingCheck(t *testing.T) {
	c, err := NewPingCheck(PingSpec{Target: Target{Addr: netip.MustParseAddrPort("127.0.0.1:0")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runCheck(c, 2*time.Second); err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("no ICMP socket without root or ping_group_range: %v", err)
		}
		t.Fatalf("ping 127.0.0.1: %v", err)
	}
}

func TestPingCheckUnanswered(t *testing.T) {
	testnet.Require(t)
	n := testnet.New(t)
	h := n.AddHost("lb", "192.0.2.1/24")
	n.AddHost("rs", "192.0.2.2/24")
	tests := []struct {
		addr string
		want error
	}{
		{"192.0.2.2", nil},
		{"192.0.2.99", ErrTimeout},
	}
	for _, tt := range tests {
		c, err := NewPingCheck(PingSpec{Target: Target{Addr: netip.AddrPortFrom(netip.MustParseAddr(tt.addr), 0)}})
		if err != nil {
			t.Fatal(err)
		}
		var cerr error
		var took time.Duration
		h.MustDo(func() error { took, cerr = runCheck(c, 1500*time.Millisecond); return nil })
		if (tt.want == nil) != (cerr == nil) || !errors.Is(cerr, tt.want) {
			t.Fatalf("ping %s = %v, want %v", tt.addr, cerr, tt.want)
		}
		if took > 3*time.Second {
			t.Errorf("ping %s took %v", tt.addr, took)
		}
	}
}

func TestTargetValidate(t *testing.T) {
	tests := []struct {
		name string
		tgt  Target
	}{
		{"no address", Target{}},
		{"mixed families", Target{Addr: netip.MustParseAddrPort("[::1]:80"), BindTo: netip.MustParseAddr("127.0.0.1")}},
	}
	for _, tt := range tests {
		if _, err := NewTCPCheck(TCPSpec{Target: tt.tgt}); !errors.Is(err, ErrSpec) {
			t.Errorf("%s: %v, want ErrSpec", tt.name, err)
		}
	}
}
