package healthcheck

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
)

// DefaultSMTPPort is SMTP_CHECK's default connect_port.
const DefaultSMTPPort = 25

// SMTPSpec is an SMTP_CHECK: the server must greet with 220, answer HELO
// with 250 and QUIT with 221, as keepalived's checker expects.
type SMTPSpec struct {
	Target Target
	// HeloName is sent with HELO; empty means the local host name.
	HeloName string
}

// SMTPCheck is the SMTP_CHECK checker.
type SMTPCheck struct {
	spec SMTPSpec
}

// NewSMTPCheck validates spec and returns its checker.
func NewSMTPCheck(spec SMTPSpec) (*SMTPCheck, error) {
	if err := spec.Target.validate(); err != nil {
		return nil, err
	}
	if spec.HeloName == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		spec.HeloName = h
	}
	if strings.ContainsAny(spec.HeloName, "\r\n") {
		return nil, fmt.Errorf("%w: helo_name holds a line break", ErrSpec)
	}
	return &SMTPCheck{spec: spec}, nil
}

// Check runs the greeting / HELO / QUIT dialogue.
func (c *SMTPCheck) Check(ctx context.Context) error {
	conn, err := c.spec.Target.dial(ctx, "tcp")
	if err != nil {
		return err
	}
	defer conn.Close()
	defer withDeadline(ctx, conn)()
	r := bufio.NewReaderSize(conn, 512)

	steps := []struct {
		send string
		want int
	}{
		{"", 220},
		{"HELO " + c.spec.HeloName + "\r\n", 250},
		{"QUIT\r\n", 221},
	}
	for _, st := range steps {
		if st.send != "" {
			if _, err := conn.Write([]byte(st.send)); err != nil {
				return ioError("smtp write", err)
			}
		}
		code, err := readSMTPReply(r)
		if err != nil {
			return err
		}
		if code != st.want {
			return fmt.Errorf("%w: smtp: got %d, want %d", ErrBadReply, code, st.want)
		}
	}
	return nil
}

// readSMTPReply reads one (possibly multi-line, "250-...") reply and
// returns its code.
func readSMTPReply(r *bufio.Reader) (int, error) {
	for lines := 0; lines < 100; lines++ {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return 0, ioError("smtp read", err)
		}
		code, more, err := parseSMTPLine(line)
		if err != nil {
			return 0, err
		}
		if !more {
			return code, nil
		}
	}
	return 0, fmt.Errorf("%w: smtp: reply longer than 100 lines", ErrBadReply)
}

// parseSMTPLine parses "DDD text" or "DDD-text" (a continuation line).
func parseSMTPLine(line []byte) (code int, more bool, err error) {
	if len(line) < 3 {
		return 0, false, fmt.Errorf("%w: smtp: short line %q", ErrBadReply, line)
	}
	for _, b := range line[:3] {
		if b < '0' || b > '9' {
			return 0, false, fmt.Errorf("%w: smtp: no reply code in %q", ErrBadReply, line)
		}
		code = code*10 + int(b-'0')
	}
	return code, len(line) > 3 && line[3] == '-', nil
}
