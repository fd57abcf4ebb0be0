package config

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a configuration, such as
//
//	ode.toml:7: unknown key c2s.listn
//
// Load and Parse fill in File and, where the key appears in the file, Line;
// Validate leaves them empty.
type Error struct {
	File string // the name given to Parse or the path given to Load
	Line int    // 1-based line, 0 when unknown
	Col  int    // 1-based column, only for syntax errors
	Key  string // the dotted key concerned, such as "c2s.listen"; empty for syntax errors
	Msg  string // what is wrong, naming the key
}

// Error formats e as file:line:col: message, leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(':')
		if e.Col > 0 {
			b.WriteString(strconv.Itoa(e.Col))
			b.WriteByte(':')
		}
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one configuration, in the order of the
// file (problems with no line last). Load, Parse and Validate return their
// errors as an Errors value; errors.As finds each *Error in it.
type Errors []*Error

// Error returns one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual errors.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// err returns es as an error: nil when es is empty.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// sort orders es by line, keeping the order of problems on one line and
// putting problems without a line last.
func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Compare(sortLine(a.Line), sortLine(b.Line))
	})
}

func sortLine(line int) int {
	if line == 0 {
		return math.MaxInt
	}
	return line
}
