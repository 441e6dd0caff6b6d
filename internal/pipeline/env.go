package pipeline

import (
	"fmt"
	"strings"
)

// expandEnv replaces ${NAME} and ${NAME:-default} in s with values from
// lookup. As in a POSIX shell, the default is used when NAME is unset or
// empty; a NAME that is unset with no default is an error naming it. "$${"
// stands for a literal "${". A "$" not followed by "{" is kept as is.
// Names are letters, digits and underscores, not starting with a digit;
// defaults cannot contain "${" or "}".
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated %q (missing \"}\"; write \"$${\" for a literal \"${\")", s[i:])
			}
			ref := s[i+2 : i+2+end]
			v, err := resolveRef(ref, lookup)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i += 2 + end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), nil
}

// resolveRef resolves the inside of one ${...}.
func resolveRef(ref string, lookup func(string) (string, bool)) (string, error) {
	name, def, hasDefault := strings.Cut(ref, ":-")
	if !validEnvName(name) {
		return "", fmt.Errorf("invalid variable reference %q (want ${NAME} or ${NAME:-default})", "${"+ref+"}")
	}
	if hasDefault && strings.Contains(def, "${") {
		return "", fmt.Errorf("nested %q in the default of %q is not supported", "${", "${"+ref+"}")
	}
	var v string
	var ok bool
	if lookup != nil {
		v, ok = lookup(name)
	}
	switch {
	case hasDefault && v == "":
		return def, nil
	case !ok:
		return "", &missingEnvError{Name: name}
	}
	return v, nil
}

// missingEnvError reports a referenced variable that is not set.
type missingEnvError struct{ Name string }

func (e *missingEnvError) Error() string {
	return fmt.Sprintf("environment variable %s is not set and has no default (use ${%s:-default})", e.Name, e.Name)
}

func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
