package ipvsvm

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// CPIOWriter writes a "newc" cpio archive, the format the kernel unpacks
// as an initramfs. Parent directories are created on demand.
//
// Each entry is a 110-byte ASCII header, the NUL-terminated name padded to
// a multiple of 4 bytes, then the data padded to a multiple of 4:
//
//	0    6  magic "070701"
//	6    8  ino        54  8  filesize
//	14   8  mode       62  8  devmajor
//	22   8  uid        70  8  devminor
//	30   8  gid        78  8  rdevmajor
//	38   8  nlink      86  8  rdevminor
//	46   8  mtime      94  8  namesize (with the NUL)
//	                   102 8  check (0)
//
// every field is 8 hex digits.
type CPIOWriter struct {
	w    io.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

// NewCPIOWriter returns a writer onto w. Call Close to write the trailer.
func NewCPIOWriter(w io.Writer) *CPIOWriter {
	return &CPIOWriter{w: w, ino: 1, dirs: map[string]bool{".": true, "/": true, "": true}}
}

const (
	cpioRegular = 0o100000
	cpioDir     = 0o040000
	cpioSymlink = 0o120000
)

func (c *CPIOWriter) entry(name string, mode uint32, data []byte) error {
	if c.err != nil {
		return c.err
	}
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if name == "" {
		return fmt.Errorf("ipvsvm: cpio: empty name")
	}
	if err := c.parents(name); err != nil {
		return err
	}
	return c.write(name, mode, data)
}

func (c *CPIOWriter) write(name string, mode uint32, data []byte) error {
	c.ino++
	nlink := 1
	if mode&0o170000 == cpioDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	buf := make([]byte, 0, len(hdr)+len(name)+8+len(data)+4)
	buf = append(buf, hdr...)
	buf = append(buf, name...)
	buf = append(buf, 0)
	buf = pad4(buf)
	buf = append(buf, data...)
	buf = pad4(buf)
	_, c.err = c.w.Write(buf)
	return c.err
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (c *CPIOWriter) parents(name string) error {
	dir := path.Dir(name)
	if c.dirs[dir] {
		return nil
	}
	if err := c.parents(dir); err != nil {
		return err
	}
	c.dirs[dir] = true
	return c.write(dir, cpioDir|0o755, nil)
}

// Dir adds a directory.
func (c *CPIOWriter) Dir(name string, perm fs.FileMode) error {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if c.dirs[name] {
		return nil
	}
	if err := c.entry(name, cpioDir|uint32(perm.Perm()), nil); err != nil {
		return err
	}
	c.dirs[name] = true
	return nil
}

// File adds a regular file.
func (c *CPIOWriter) File(name string, perm fs.FileMode, data []byte) error {
	return c.entry(name, cpioRegular|uint32(perm.Perm()), data)
}

// Symlink adds a symbolic link name -> target.
func (c *CPIOWriter) Symlink(name, target string) error {
	return c.entry(name, cpioSymlink|0o777, []byte(target))
}

// Close writes the trailer entry. It does not close the underlying writer.
func (c *CPIOWriter) Close() error {
	if c.err != nil {
		return c.err
	}
	return c.write("TRAILER!!!", 0, nil)
}
