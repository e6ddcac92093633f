package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xdpvip/xdpvip/pkg/script"
)

// MiscSpec is a MISC_CHECK: a program whose exit status is the verdict.
type MiscSpec struct {
	// Path is misc_path, a command line split as keepalived does (see
	// script.Split).
	Path string
	// Timeout is misc_timeout; the script's process group is killed when
	// it expires. 0 means script.DefaultTimeout; the config mapper should
	// pass the checker's delay_loop when misc_timeout is absent, as
	// keepalived does.
	Timeout time.Duration
	// Dynamic is misc_dynamic: exit 0 = up, 1 = down, 2..255 = up with
	// weight exit-2. Without it any non-zero exit is down.
	Dynamic bool
	// Command carries the user/group and environment to run as; its Line
	// and Timeout are ignored.
	Command script.Command
}

// MiscCheck is the MISC_CHECK checker. It is a DynamicChecker.
type MiscCheck struct {
	cmd     script.Command
	dynamic bool
}

// NewMiscCheck validates spec and returns its checker.
func NewMiscCheck(spec MiscSpec) (*MiscCheck, error) {
	if _, err := script.Split(spec.Path); err != nil {
		return nil, fmt.Errorf("%w: misc_path: %w", ErrSpec, err)
	}
	cmd := spec.Command
	cmd.Line, cmd.Timeout = spec.Path, spec.Timeout
	return &MiscCheck{cmd: cmd, dynamic: spec.Dynamic}, nil
}

// Check runs the script.
func (c *MiscCheck) Check(ctx context.Context) error {
	_, _, err := c.CheckWeight(ctx)
	return err
}

// CheckWeight runs the script and interprets its exit status.
func (c *MiscCheck) CheckWeight(ctx context.Context) (int, bool, error) {
	res, err := script.Run(ctx, c.cmd)
	if err != nil {
		if errors.Is(err, script.ErrTimeout) {
			return 0, false, fmt.Errorf("%w: %w: %w", ErrScript, ErrTimeout, err)
		}
		return 0, false, fmt.Errorf("%w: %w", ErrScript, err)
	}
	return MiscVerdict(res.ExitCode, c.dynamic)
}

// MiscVerdict maps a MISC_CHECK exit status to keepalived's verdict.
func MiscVerdict(exit int, dynamic bool) (weight int, hasWeight bool, err error) {
	switch {
	case exit == 0:
		return 0, false, nil
	case exit == 1 || !dynamic:
		return 0, false, fmt.Errorf("%w: exit status %d", ErrScript, exit)
	default:
		return exit - 2, true, nil
	}
}
