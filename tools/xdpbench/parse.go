package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The parser of the kernel's /proc/net/snmp (trafgen's summary is
// netlab.ParseTrafgenSent).

// ErrNoSNMPField is returned when /proc/net/snmp lacks the field.
var ErrNoSNMPField = errors.New("field not in /proc/net/snmp")

// parseSNMP returns one counter of /proc/net/snmp, whose protocols come as
// pairs of lines, names then values:
//
//	Udp: InDatagrams NoPorts InErrors OutDatagrams ...
//	Udp: 12 3456 0 12 ...
func parseSNMP(text, proto, field string) (uint64, error) {
	lines := strings.Split(text, "\n")
	for i := 0; i+1 < len(lines); i++ {
		names := strings.Fields(lines[i])
		values := strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != proto+":" || len(values) == 0 || values[0] != proto+":" {
			continue
		}
		if len(names) != len(values) {
			return 0, fmt.Errorf("%s: %d names, %d values", proto, len(names), len(values))
		}
		for j, n := range names[1:] {
			if n == field {
				v, err := strconv.ParseUint(values[j+1], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("%s %s: %w", proto, field, err)
				}
				return v, nil
			}
		}
	}
	return 0, fmt.Errorf("%s %s: %w", proto, field, ErrNoSNMPField)
}
