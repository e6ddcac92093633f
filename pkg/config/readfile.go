package config

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// readConfigFile is the default Options.ReadFile. It reads only what
// keepalived reads: a regular, non-executable file (its check_glob_file).
// Anything else (a device such as /dev/zero or /dev/watchdog, a FIFO, a
// socket, a directory) is refused without being opened, so it can neither
// block the reader nor feed it without end; symbolic links are followed,
// as keepalived does (a managed keepalived.conf is often a link). The
// opened file is checked again with fstat, so a path swapped for a FIFO
// between the stat and the open is refused too and, being opened
// non-blocking, cannot wedge the read. At most maxFileSize+1 bytes are
// read.
func readConfigFile(name string) ([]byte, error) {
	before, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if err := checkConfigFileMode(before.Mode()); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	after, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkConfigFileMode(after.Mode()); err != nil {
		return nil, err
	}
	if !os.SameFile(before, after) {
		return nil, fmt.Errorf("changed while being opened")
	}
	src, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(src) > maxFileSize {
		return nil, fmt.Errorf("larger than the %d bytes a configuration file may have", maxFileSize)
	}
	return src, nil
}

// checkConfigFileMode refuses what keepalived's check_glob_file refuses.
func checkConfigFileMode(m fs.FileMode) error {
	if m.IsRegular() {
		if m&0o111 != 0 {
			return fmt.Errorf("executable, not a regular non-executable file (keepalived skips it too)")
		}
		return nil
	}
	kind := "not a regular file"
	switch {
	case m.IsDir():
		kind = "a directory"
	case m&fs.ModeCharDevice != 0:
		kind = "a character device"
	case m&fs.ModeDevice != 0:
		kind = "a block device"
	case m&fs.ModeNamedPipe != 0:
		kind = "a FIFO"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	}
	return fmt.Errorf("%s, not a regular file: refused", kind)
}
