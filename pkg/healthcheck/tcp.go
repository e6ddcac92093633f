package healthcheck

import "context"

// TCPSpec is a TCP_CHECK: the service is up when a TCP connection to the
// target completes.
type TCPSpec struct {
	Target Target
}

// TCPCheck is the TCP_CHECK checker.
type TCPCheck struct {
	spec TCPSpec
}

// NewTCPCheck validates spec and returns its checker.
func NewTCPCheck(spec TCPSpec) (*TCPCheck, error) {
	if err := spec.Target.validate(); err != nil {
		return nil, err
	}
	return &TCPCheck{spec: spec}, nil
}

// Check connects and closes the connection at once.
func (c *TCPCheck) Check(ctx context.Context) error {
	conn, err := c.spec.Target.dial(ctx, "tcp")
	if err != nil {
		return err
	}
	return conn.Close()
}
