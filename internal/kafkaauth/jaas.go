package kafkaauth

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Login module classes sluice understands in kafka.sasl.jaas.config. A
// shaded copy (e.g. Databricks' "kafkashaded." prefix) is accepted too: only
// the part from "org.apache.kafka." on is compared.
const (
	PlainLoginModule = "org.apache.kafka.common.security.plain.PlainLoginModule"
	ScramLoginModule = "org.apache.kafka.common.security.scram.ScramLoginModule"
)

// JAAS is one parsed login-module entry of a Java JAAS configuration, the
// form Kafka clients take in sasl.jaas.config:
//
//	<LoginModuleClass> <flag> name1="value1" name2=value2;
//
// Its String method never shows option values.
type JAAS struct {
	// Module is the login module class as written (shading prefix included).
	Module string
	// Flag is the control flag: required, requisite, sufficient or optional.
	Flag string
	// Options are the name=value pairs, quotes removed and escapes decoded.
	Options map[string]string
}

// String lists the module, flag and option names; values are redacted.
func (j JAAS) String() string {
	names := make([]string, 0, len(j.Options))
	for n := range j.Options {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(j.Module)
	b.WriteByte(' ')
	b.WriteString(j.Flag)
	for _, n := range names {
		b.WriteString(" " + n + `="` + redactedMark + `"`)
	}
	b.WriteByte(';')
	return b.String()
}

// GoString is String, so that %#v does not show values either.
func (j JAAS) GoString() string { return j.String() }

// Format renders j back into JAAS syntax with every value quoted. It
// includes the values, secrets too: use it only to build configuration,
// never to log.
func (j JAAS) Format() string {
	names := make([]string, 0, len(j.Options))
	for n := range j.Options {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(j.Module)
	b.WriteByte(' ')
	b.WriteString(j.Flag)
	for _, n := range names {
		b.WriteString(" " + n + "=" + quoteJAAS(j.Options[n]))
	}
	b.WriteByte(';')
	return b.String()
}

// quoteJAAS quotes v so that ParseJAAS reads it back unchanged.
func quoteJAAS(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range v {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Mechanism returns the SASL mechanism family the module implements:
// "PLAIN", "SCRAM", or "" for a module sluice does not support.
func (j JAAS) Mechanism() string {
	switch unshaded(j.Module) {
	case PlainLoginModule:
		return MechanismPlain
	case ScramLoginModule:
		return "SCRAM"
	}
	return ""
}

// unshaded strips a shading prefix such as "kafkashaded." from a class name.
func unshaded(class string) string {
	if i := strings.Index(class, "org.apache.kafka."); i > 0 && strings.HasSuffix(class[:i], ".") {
		return class[i:]
	}
	return class
}

var (
	javaClassName = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)+$`)
	optionName    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]*$`)
)

// ParseJAAS parses a sasl.jaas.config value holding exactly one login module.
// Values may be double-quoted (with backslash escapes) or bare words; the
// final ';' may be omitted; // and /* */ comments are skipped, as Kafka's
// parser does. Errors describe the position and what was expected but never
// quote the input, which usually holds a password.
func ParseJAAS(s string) (JAAS, error) {
	p := &jaasParser{s: s}
	var entries []JAAS
	for {
		p.skipSpace()
		if p.eof() {
			break
		}
		e, err := p.entry()
		if err != nil {
			return JAAS{}, err
		}
		entries = append(entries, e)
	}
	switch len(entries) {
	case 0:
		return JAAS{}, errors.New("JAAS configuration is empty; expected e.g. " +
			PlainLoginModule + ` required username="..." password="...";`)
	case 1:
		return entries[0], nil
	}
	return JAAS{}, fmt.Errorf("JAAS configuration has %d login modules; Kafka clients take exactly one", len(entries))
}

type jaasParser struct {
	s   string
	pos int
}

func (p *jaasParser) eof() bool { return p.pos >= len(p.s) }

func (p *jaasParser) errorf(format string, args ...any) error {
	return fmt.Errorf("JAAS configuration, character %d: %s", p.pos+1, fmt.Sprintf(format, args...))
}

// skipSpace skips white space and comments.
func (p *jaasParser) skipSpace() {
	for !p.eof() {
		c := p.s[p.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			p.pos++
		case strings.HasPrefix(p.s[p.pos:], "//"):
			for !p.eof() && p.s[p.pos] != '\n' {
				p.pos++
			}
		case strings.HasPrefix(p.s[p.pos:], "/*"):
			end := strings.Index(p.s[p.pos+2:], "*/")
			if end < 0 {
				p.pos = len(p.s)
				return
			}
			p.pos += 2 + end + 2
		default:
			return
		}
	}
}

// word reads a bare word: everything up to white space, '=', ';' or '"'.
func (p *jaasParser) word() string {
	start := p.pos
	for !p.eof() {
		c := p.s[p.pos]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '=' || c == ';' || c == '"' {
			break
		}
		p.pos++
	}
	return p.s[start:p.pos]
}

// quoted reads a double-quoted string starting at the opening quote.
func (p *jaasParser) quoted() (string, error) {
	open := p.pos
	p.pos++
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.pos]
		switch c {
		case '"':
			p.pos++
			return b.String(), nil
		case '\\':
			p.pos++
			if p.eof() {
				p.pos = open
				return "", p.errorf("quoted value is not closed")
			}
			e := p.s[p.pos]
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			default:
				b.WriteByte(e)
			}
			p.pos++
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
	p.pos = open
	return "", p.errorf("quoted value is not closed")
}

func (p *jaasParser) entry() (JAAS, error) {
	start := p.pos
	module := p.word()
	if module == "" || !javaClassName.MatchString(module) {
		p.pos = start
		return JAAS{}, p.errorf("expected a login module class such as %s (the value is not shown: it may hold a secret)", PlainLoginModule)
	}
	p.skipSpace()
	flagAt := p.pos
	flag := strings.ToLower(p.word())
	switch flag {
	case "required", "requisite", "sufficient", "optional":
	default:
		p.pos = flagAt
		return JAAS{}, p.errorf("expected a control flag (required, requisite, sufficient or optional) after the login module class")
	}
	e := JAAS{Module: module, Flag: flag, Options: map[string]string{}}
	for {
		p.skipSpace()
		if p.eof() {
			return e, nil // a missing final ';' is forgiven
		}
		if p.s[p.pos] == ';' {
			p.pos++
			return e, nil
		}
		nameAt := p.pos
		name := p.word()
		if name == "" || len(name) > 64 || !optionName.MatchString(name) {
			p.pos = nameAt
			return JAAS{}, p.errorf("expected an option name (a word such as username) or ';'")
		}
		p.skipSpace()
		if p.eof() || p.s[p.pos] != '=' {
			p.pos = nameAt
			return JAAS{}, p.errorf("expected '=' after an option name (option names are words; values go after '=')")
		}
		p.pos++
		p.skipSpace()
		var val string
		switch {
		case p.eof():
			return JAAS{}, p.errorf("expected a value after '='")
		case p.s[p.pos] == '"':
			v, err := p.quoted()
			if err != nil {
				return JAAS{}, err
			}
			val = v
		default:
			val = p.word()
			if val == "" {
				return JAAS{}, p.errorf("expected a value after '=' (quote values that contain spaces, '=', ';' or '\"')")
			}
		}
		if _, dup := e.Options[name]; dup {
			p.pos = nameAt
			return JAAS{}, p.errorf("option %s is set twice", safeName(name))
		}
		e.Options[name] = val
	}
}

// safeName quotes an option name (validated by the parser) for an error.
func safeName(n string) string { return strconv.Quote(n) }
