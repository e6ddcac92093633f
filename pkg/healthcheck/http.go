package healthcheck

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http/httputil"
	"regexp"
	"strconv"
	"strings"
)

// HTTP protocol versions a check can speak (keepalived's http_protocol).
const (
	HTTP10      = "1.0"  // the default, as keepalived and genhash
	HTTP10Close = "1.0C" // 1.0 with "Connection: close"
	HTTP11      = "1.1"  // 1.1 with "Connection: close"
)

// userAgent is the User-Agent keepalived's checker and genhash send.
const userAgent = "KeepAliveClient"

// maxHeaderBytes bounds the status line and headers of a reply.
const maxHeaderBytes = 64 << 10

// maxRegexBody bounds how much of the body a regex is matched against.
const maxRegexBody = 1 << 20

// StatusRange is an inclusive range of HTTP status codes; a single code is
// a range with Lo == Hi.
type StatusRange struct{ Lo, Hi int }

// DefaultStatusCodes is keepalived's default: any 2xx.
var DefaultStatusCodes = []StatusRange{{200, 299}}

// URLSpec is one `url { }` block of HTTP_GET / SSL_GET.
type URLSpec struct {
	// Path is sent in the request line, e.g. "/index.html".
	Path string
	// Digest is the MD5 of the body in hex as genhash prints it; empty
	// means the body is not checked.
	Digest string
	// StatusCodes are the accepted codes; nil means DefaultStatusCodes.
	StatusCodes []StatusRange
	// Virtualhost overrides HTTPSpec.Virtualhost for this URL.
	Virtualhost string
	// Regex, if set, must match the body (or must not, with RegexNoMatch).
	// Go's RE2 syntax, not PCRE.
	Regex        *regexp.Regexp
	RegexNoMatch bool
}

// HTTPSpec is an HTTP_GET or, with TLS set, an SSL_GET. The check passes
// when every URL passes.
type HTTPSpec struct {
	Target Target
	URLs   []URLSpec
	// Virtualhost is sent as the Host header (and as SNI with EnableSNI);
	// empty means the target address. The config mapper resolves it from
	// the checker, real server or virtual server.
	Virtualhost string
	// Protocol is HTTP10 (default), HTTP10Close or HTTP11.
	Protocol string
	// TLS makes this an SSL_GET. Certificates are not verified, as in
	// keepalived.
	TLS bool
	// EnableSNI sends the virtual host as TLS server name.
	EnableSNI bool
	// TLSConfig, if set, is the base TLS configuration (client
	// certificate from keepalived's SSL block).
	TLSConfig *tls.Config
}

// HTTPCheck is the HTTP_GET / SSL_GET checker.
type HTTPCheck struct {
	spec   HTTPSpec
	digest [][]byte // decoded URLSpec.Digest, nil when unset
}

// NewHTTPCheck validates spec and returns its checker.
func NewHTTPCheck(spec HTTPSpec) (*HTTPCheck, error) {
	if err := spec.Target.validate(); err != nil {
		return nil, err
	}
	if len(spec.URLs) == 0 {
		return nil, fmt.Errorf("%w: HTTP check without url", ErrSpec)
	}
	switch spec.Protocol {
	case "":
		spec.Protocol = HTTP10
	case HTTP10, HTTP10Close, HTTP11:
	default:
		return nil, fmt.Errorf("%w: http_protocol %q (want 1.0, 1.0C or 1.1)", ErrSpec, spec.Protocol)
	}
	c := &HTTPCheck{spec: spec, digest: make([][]byte, len(spec.URLs))}
	for i, u := range spec.URLs {
		if u.Path == "" || strings.ContainsAny(u.Path, " \r\n") {
			return nil, fmt.Errorf("%w: url path %q", ErrSpec, u.Path)
		}
		if strings.ContainsAny(u.Virtualhost+spec.Virtualhost, " \r\n") {
			return nil, fmt.Errorf("%w: virtualhost with whitespace", ErrSpec)
		}
		for _, r := range u.StatusCodes {
			if r.Lo < 100 || r.Hi > 999 || r.Lo > r.Hi {
				return nil, fmt.Errorf("%w: status_code range %d-%d", ErrSpec, r.Lo, r.Hi)
			}
		}
		if u.Digest != "" {
			d, err := hex.DecodeString(u.Digest)
			if err != nil || len(d) != md5.Size {
				return nil, fmt.Errorf("%w: digest %q is not 32 hex digits", ErrSpec, u.Digest)
			}
			c.digest[i] = d
		}
	}
	return c, nil
}

// Check fetches every URL in turn over a fresh connection each.
func (c *HTTPCheck) Check(ctx context.Context) error {
	for i := range c.spec.URLs {
		if err := c.checkURL(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// host returns the Host header value for URL i.
func (c *HTTPCheck) host(i int) (host string, virtual bool) {
	if v := c.spec.URLs[i].Virtualhost; v != "" {
		return v, true
	}
	if c.spec.Virtualhost != "" {
		return c.spec.Virtualhost, true
	}
	a := c.spec.Target.Addr
	defPort := uint16(80)
	if c.spec.TLS {
		defPort = 443
	}
	if a.Port() == defPort {
		if a.Addr().Is6() {
			return "[" + a.Addr().String() + "]", false
		}
		return a.Addr().String(), false
	}
	return a.String(), false
}

// request builds the GET request keepalived's checker sends.
func (c *HTTPCheck) request(i int) []byte {
	host, _ := c.host(i)
	var b bytes.Buffer
	proto := "HTTP/1.0"
	if c.spec.Protocol == HTTP11 {
		proto = "HTTP/1.1"
	}
	fmt.Fprintf(&b, "GET %s %s\r\nUser-Agent: %s\r\nHost: %s\r\n", c.spec.URLs[i].Path, proto, userAgent, host)
	if c.spec.Protocol != HTTP10 {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func (c *HTTPCheck) checkURL(ctx context.Context, i int) error {
	u := c.spec.URLs[i]
	conn, err := c.spec.Target.dial(ctx, "tcp")
	if err != nil {
		return err
	}
	defer conn.Close()
	defer withDeadline(ctx, conn)()

	var rw net.Conn = conn
	if c.spec.TLS {
		cfg := &tls.Config{}
		if c.spec.TLSConfig != nil {
			cfg = c.spec.TLSConfig.Clone()
		}
		cfg.InsecureSkipVerify = true // keepalived does not verify real servers' certificates
		if host, virtual := c.host(i); c.spec.EnableSNI && virtual {
			cfg.ServerName = host
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return ioError("tls handshake", err)
		}
		rw = tc
	}
	if _, err := rw.Write(c.request(i)); err != nil {
		return ioError("http write", err)
	}
	resp, err := readHTTPResponse(bufio.NewReaderSize(rw, 4096), u.Regex != nil)
	if err != nil {
		return fmt.Errorf("%s: %w", u.Path, err)
	}
	codes := u.StatusCodes
	if len(codes) == 0 {
		codes = DefaultStatusCodes
	}
	if !statusOK(resp.status, codes) {
		return fmt.Errorf("%w: %s: status %d", ErrBadReply, u.Path, resp.status)
	}
	if d := c.digest[i]; d != nil && !bytes.Equal(d, resp.md5) {
		return fmt.Errorf("%w: %s: digest %x, want %x", ErrBadReply, u.Path, resp.md5, d)
	}
	if u.Regex != nil && u.Regex.Match(resp.body) == u.RegexNoMatch {
		return fmt.Errorf("%w: %s: body does not satisfy regex %q (no_match=%v)", ErrBadReply, u.Path, u.Regex, u.RegexNoMatch)
	}
	return nil
}

func statusOK(code int, ranges []StatusRange) bool {
	for _, r := range ranges {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

// httpResponse is what a check needs from a reply.
type httpResponse struct {
	status int
	md5    []byte // MD5 of the body, as genhash computes it
	body   []byte // the body's start, only when asked for (regex)
}

// httpHead is the parsed status line and the headers that frame the body.
type httpHead struct {
	status        int
	chunked       bool
	contentLength int64 // -1 when absent
}

// readHTTPResponse reads a whole reply and hashes its body.
func readHTTPResponse(r *bufio.Reader, keepBody bool) (httpResponse, error) {
	var head bytes.Buffer
	for !bytes.HasSuffix(head.Bytes(), []byte("\r\n\r\n")) && !bytes.HasSuffix(head.Bytes(), []byte("\n\n")) {
		line, err := r.ReadSlice('\n')
		head.Write(line)
		if head.Len() > maxHeaderBytes {
			return httpResponse{}, fmt.Errorf("%w: headers longer than %d bytes", ErrBadReply, maxHeaderBytes)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if head.Len() > 0 && err == io.EOF {
				break // headers cut short: parse what came
			}
			return httpResponse{}, ioError("http read", err)
		}
	}
	h, err := parseHTTPHead(head.Bytes())
	if err != nil {
		return httpResponse{}, err
	}
	var body io.Reader = r
	switch {
	case h.chunked:
		body = httputil.NewChunkedReader(r)
	case h.contentLength >= 0:
		body = io.LimitReader(r, h.contentLength)
	}
	sum := md5.New()
	var kept *limitedWriter
	var w io.Writer = sum
	if keepBody {
		kept = &limitedWriter{limit: maxRegexBody}
		w = io.MultiWriter(sum, kept)
	}
	if _, err := io.Copy(w, body); err != nil {
		return httpResponse{}, ioError("http body", err)
	}
	resp := httpResponse{status: h.status, md5: sumOf(sum)}
	if kept != nil {
		resp.body = kept.buf
	}
	return resp, nil
}

func sumOf(h hash.Hash) []byte { return h.Sum(nil) }

// parseHTTPHead parses "HTTP/1.x NNN reason" and the headers after it.
func parseHTTPHead(b []byte) (httpHead, error) {
	h := httpHead{contentLength: -1}
	lines := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	status := lines[0]
	if !strings.HasPrefix(status, "HTTP/") {
		return h, fmt.Errorf("%w: not an HTTP status line: %.40q", ErrBadReply, status)
	}
	_, rest, ok := strings.Cut(status, " ")
	if !ok || len(rest) < 3 {
		return h, fmt.Errorf("%w: no status code: %.40q", ErrBadReply, status)
	}
	code, err := strconv.Atoi(rest[:3])
	if err != nil || code < 100 || (len(rest) > 3 && rest[3] != ' ') {
		return h, fmt.Errorf("%w: bad status code: %.40q", ErrBadReply, status)
	}
	h.status = code
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "transfer-encoding":
			h.chunked = strings.EqualFold(value, "chunked")
		case "content-length":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return h, fmt.Errorf("%w: bad Content-Length %.20q", ErrBadReply, value)
			}
			h.contentLength = n
		}
	}
	return h, nil
}

// limitedWriter keeps the first limit bytes written to it.
type limitedWriter struct {
	limit int
	buf   []byte
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if room := w.limit - len(w.buf); room > 0 {
		w.buf = append(w.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
