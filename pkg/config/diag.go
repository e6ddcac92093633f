package config

import (
	"errors"
	"fmt"
	"strings"
)

// Severity says whether a Diagnostic makes the configuration invalid.
type Severity int

// Severities.
const (
	// Warning: keepalived accepts the configuration (possibly after
	// correcting or ignoring something) and so does xdpvip.
	Warning Severity = iota
	// Error: the configuration is rejected.
	Error
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// Diagnostic is one problem found in the configuration.
type Diagnostic struct {
	Pos
	Keyword  string
	Severity Severity
	Message  string
}

// String returns "file:line: keyword: reason".
func (d Diagnostic) String() string {
	return fmt.Sprintf("%s: %s: %s", d.Pos, d.Keyword, d.Message)
}

// ErrInvalid is wrapped by the error Load and Parse return when the
// configuration has at least one Error diagnostic.
var ErrInvalid = errors.New("invalid configuration")

// InvalidError lists the Error diagnostics of a rejected configuration.
type InvalidError struct {
	Errors []Diagnostic
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d error(s)", ErrInvalid, len(e.Errors))
	for _, d := range e.Errors {
		b.WriteString("\n")
		b.WriteString(d.String())
	}
	return b.String()
}

// Unwrap returns ErrInvalid.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// maxDiagnostics bounds the work done on input that is not a
// configuration at all: past it, reading stops with an error.
const maxDiagnostics = 500

// diagSink collects diagnostics and stops the reader when there are too
// many of them.
type diagSink struct {
	list    []Diagnostic
	aborted bool
}

func (d *diagSink) add(sev Severity, pos Pos, kw, format string, args ...any) {
	if d.aborted {
		return
	}
	if kw == "" {
		kw = `""` // an empty quoted keyword
	}
	if len(d.list) >= maxDiagnostics {
		d.aborted = true
		d.list = append(d.list, Diagnostic{Pos: pos, Keyword: kw, Severity: Error,
			Message: fmt.Sprintf("more than %d problems, giving up (is this a keepalived.conf?)", maxDiagnostics)})
		return
	}
	d.list = append(d.list, Diagnostic{Pos: pos, Keyword: kw, Severity: sev, Message: fmt.Sprintf(format, args...)})
}

func (d *diagSink) errorf(pos Pos, kw, format string, args ...any) {
	d.add(Error, pos, kw, format, args...)
}

func (d *diagSink) warnf(pos Pos, kw, format string, args ...any) {
	d.add(Warning, pos, kw, format, args...)
}

// fatal records an error that stops reading.
func (d *diagSink) fatal(pos Pos, kw, format string, args ...any) {
	if d.aborted {
		return
	}
	if kw == "" {
		kw = `""` // as in add
	}
	d.list = append(d.list, Diagnostic{Pos: pos, Keyword: kw, Severity: Error, Message: fmt.Sprintf(format, args...)})
	d.aborted = true
}

// result returns the error for the collected diagnostics, nil if none is
// an Error.
func (d *diagSink) result() error {
	var errs []Diagnostic
	for _, x := range d.list {
		if x.Severity == Error {
			errs = append(errs, x)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &InvalidError{Errors: errs}
}
