// Package script runs keepalived-style script command lines: MISC_CHECK
// programs, notify_up / notify_down, vrrp notify and track scripts.
//
// A command line is split into argv the way keepalived does it (whitespace
// separates words, quotes group them, no shell is involved unless the line
// names one), run in its own process group, and the whole group is killed
// when the timeout expires, so a script that forks a sleeping child cannot
// hang the caller.
package script

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by Split.
var (
	// ErrEmpty means the command line holds no word.
	ErrEmpty = errors.New("script: empty command line")
	// ErrUnterminatedQuote means a ' or " was opened and never closed.
	ErrUnterminatedQuote = errors.New("script: unterminated quote")
	// ErrTrailingBackslash means the line ends in an unescaped backslash.
	ErrTrailingBackslash = errors.New("script: trailing backslash")
)

// Split splits a command line into argv.
//
// Unquoted whitespace (space, tab, newline) separates words. Text between
// single quotes is taken literally. Text between double quotes is taken
// literally except that \" and \\ stand for " and \. Outside quotes a
// backslash makes the next character literal. Quote characters are removed
// and the text around them joins the same word, so a"b c"d is one word
// `ab cd`. An empty pair of quotes makes an empty word.
func Split(line string) ([]string, error) {
	var (
		args    []string
		cur     strings.Builder
		inWord  bool // cur holds a word, maybe empty ("")
		quote   byte // 0, '\'' or '"'
		escaped bool
	)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case escaped:
			cur.WriteByte(c)
			escaped = false
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case quote == '"':
			switch {
			case c == '"':
				quote = 0
			case c == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\'):
				i++
				cur.WriteByte(line[i])
			default:
				cur.WriteByte(c)
			}
		case c == '\\':
			escaped, inWord = true, true
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	switch {
	case quote != 0:
		return nil, fmt.Errorf("%w (%c) in %q", ErrUnterminatedQuote, quote, line)
	case escaped:
		return nil, fmt.Errorf("%w in %q", ErrTrailingBackslash, line)
	}
	if inWord {
		args = append(args, cur.String())
	}
	if len(args) == 0 {
		return nil, ErrEmpty
	}
	return args, nil
}
