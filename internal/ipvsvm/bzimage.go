package ipvsvm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// ErrNotBzImage is wrapped by errors about a file that is not an x86
// bzImage this package can unpack.
var ErrNotBzImage = errors.New("ipvsvm: not a bzImage")

// Payload locates the compressed kernel inside a bzImage.
type Payload struct {
	Offset      int    // from the start of the file
	Length      int    // bytes, as the header says (may include a size trailer)
	Compression string // "gzip", "xz", "zstd", "lzma", "lz4", "bzip2"
}

// x86 boot protocol header (Documentation/arch/x86/boot.rst), offsets
// from the start of the bzImage:
//
//	0x1f1  u8   setup_sects     real-mode setup size in 512-byte sectors (0 means 4)
//	0x202  u32  header          "HdrS"
//	0x206  u16  version         boot protocol version, payload fields from 2.08
//	0x248  u32  payload_offset  from the start of the protected-mode code
//	0x24c  u32  payload_length
const (
	offSetupSects    = 0x1f1
	offHeaderMagic   = 0x202
	offVersion       = 0x206
	offPayloadOffset = 0x248
	offPayloadLength = 0x24c
	headerEnd        = 0x250
)

var compressionMagic = []struct {
	name  string
	magic []byte
}{
	{"gzip", []byte{0x1f, 0x8b}},
	{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
	{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}},
	{"lzma", []byte{0x5d, 0x00, 0x00}},
	{"lz4", []byte{0x02, 0x21, 0x4c, 0x18}},
	{"bzip2", []byte{'B', 'Z', 'h'}},
}

// ParseBzImage reads the boot header and finds the compressed payload.
func ParseBzImage(b []byte) (Payload, error) {
	if len(b) < headerEnd {
		return Payload{}, fmt.Errorf("%w: %d bytes is shorter than the boot header: %w", ErrNotBzImage, len(b), io.ErrUnexpectedEOF)
	}
	if !bytes.Equal(b[offHeaderMagic:offHeaderMagic+4], []byte("HdrS")) {
		return Payload{}, fmt.Errorf("%w: no HdrS magic", ErrNotBzImage)
	}
	if v := binary.LittleEndian.Uint16(b[offVersion:]); v < 0x0208 {
		return Payload{}, fmt.Errorf("%w: boot protocol %d.%02d has no payload fields", ErrNotBzImage, v>>8, v&0xff)
	}
	setup := int(b[offSetupSects])
	if setup == 0 {
		setup = 4
	}
	pmStart := (setup + 1) * 512
	off := pmStart + int(binary.LittleEndian.Uint32(b[offPayloadOffset:]))
	length := int(binary.LittleEndian.Uint32(b[offPayloadLength:]))
	if off < pmStart || length <= 0 || off > len(b) || length > len(b)-off {
		return Payload{}, fmt.Errorf("%w: payload %d+%d outside the %d-byte file", ErrNotBzImage, off, length, len(b))
	}
	p := b[off : off+length]
	for _, c := range compressionMagic {
		if bytes.HasPrefix(p, c.magic) {
			return Payload{Offset: off, Length: length, Compression: c.name}, nil
		}
	}
	return Payload{}, fmt.Errorf("%w: unknown compression, payload starts % x", ErrNotBzImage, p[:min(len(p), 6)])
}

// decompressors are the commands that write a payload's decompressed form
// to stdout; each tolerates the 4-byte size trailer the kernel build appends.
var decompressors = map[string][]string{
	"gzip":  {"gzip", "-dc"},
	"xz":    {"xz", "-dc", "--single-stream"},
	"zstd":  {"zstd", "-dc"},
	"lzma":  {"xz", "-dc", "--format=lzma"},
	"lz4":   {"lz4", "-dc"},
	"bzip2": {"bzip2", "-dc"},
}

// ExtractVmlinux writes the uncompressed kernel (an ELF file that qemu
// boots through its PVH entry) found in the bzImage at bzPath to out.
func ExtractVmlinux(bzPath, out string) error {
	b, err := os.ReadFile(bzPath)
	if err != nil {
		return err
	}
	p, err := ParseBzImage(b)
	if err != nil {
		return fmt.Errorf("%s: %w", bzPath, err)
	}
	argv := decompressors[p.Compression]
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(b[p.Offset : p.Offset+p.Length])
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	// gzip and zstd complain about the size trailer but have written
	// everything; judge by the result.
	if !bytes.HasPrefix(raw, []byte("\x7fELF")) {
		return fmt.Errorf("ipvsvm: %s: %s payload did not decompress to ELF (%v): %s", bzPath, p.Compression, err, stderr.String())
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
