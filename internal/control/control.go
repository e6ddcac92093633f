// Package control is the daemon's local control socket: one JSON request
// per connection ({"method": "status"}), one JSON response
// ({"result": ...} or {"error": "..."}). The socket is created 0600, so only
// root (or the daemon's user) can read state or ask for anything.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultSocket is where the daemon listens unless --control-socket says otherwise.
const DefaultSocket = "/run/xdpvip/xdpvip.sock"

// maxRequest bounds a request's size; requests are tiny.
const maxRequest = 64 << 10

type request struct {
	Method string `json:"method"`
}

type response struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// Handler answers one method; its result is marshalled to JSON.
type Handler func(ctx context.Context) (any, error)

// Server serves the registered methods on a unix socket.
type Server struct {
	path     string
	ln       net.Listener
	log      *slog.Logger
	mu       sync.RWMutex
	handlers map[string]Handler
	wg       sync.WaitGroup
}

// Listen creates the socket at path (its directory too), replacing a stale
// socket left by a dead daemon but refusing to steal a live one.
func Listen(path string, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another daemon is listening there", path)
	}
	_ = os.Remove(path)
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return &Server{path: path, ln: ln, log: log, handlers: map[string]Handler{}}, nil
}

// Handle registers h for method.
func (s *Server) Handle(method string, h Handler) {
	s.mu.Lock()
	s.handlers[method] = h
	s.mu.Unlock()
}

// Serve accepts connections until Close.
func (s *Server) Serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
		}()
	}
}

func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var req request
	if err := json.NewDecoder(io.LimitReader(c, maxRequest)).Decode(&req); err != nil {
		s.reply(c, nil, fmt.Errorf("bad request: %w", err))
		return
	}
	s.mu.RLock()
	h, ok := s.handlers[req.Method]
	s.mu.RUnlock()
	if !ok {
		s.reply(c, nil, fmt.Errorf("unknown method %q", req.Method))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := h(ctx)
	s.reply(c, res, err)
}

func (s *Server) reply(c net.Conn, res any, err error) {
	var r response
	if err != nil {
		r.Error = err.Error()
	} else if b, merr := json.Marshal(res); merr != nil {
		r.Error = merr.Error()
	} else {
		r.Result = b
	}
	if werr := json.NewEncoder(c).Encode(&r); werr != nil && s.log != nil {
		s.log.Debug("control reply failed", "err", werr)
	}
}

// Close stops accepting, waits for requests in flight and removes the socket.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	_ = os.Remove(s.path)
	return err
}

// ErrNoDaemon means nothing listens on the socket.
var ErrNoDaemon = errors.New("no xdpvip daemon is listening")

// Call asks the daemon at path for method and decodes the result into out.
func Call(ctx context.Context, path, method string, out any) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return fmt.Errorf("%w on %s: %v", ErrNoDaemon, path, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if err := json.NewEncoder(c).Encode(request{Method: method}); err != nil {
		return fmt.Errorf("control %s: %w", path, err)
	}
	var r response
	if err := json.NewDecoder(c).Decode(&r); err != nil {
		return fmt.Errorf("control %s: reading reply: %w", path, err)
	}
	if r.Error != "" {
		return fmt.Errorf("daemon: %s", r.Error)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(r.Result, out)
}
