package kafkaauth

import (
	"regexp"
	"slices"
	"strings"
)

// redactedMark replaces secret values.
const redactedMark = "[redacted]"

// secretParts are substrings of option names whose values are secrets.
var secretParts = []string{
	"password", "secret", "jaas.config", "connectionstring", "ssl.key.pem",
	"keystore.key", "token", "credential", "sharedaccesskey", "sasl.oauthbearer",
}

// IsSecretOption reports whether the value of the option name must never be
// shown (logs, errors, progress, /api, UI): passwords, JAAS configurations,
// Event Hubs connection strings, private keys, tokens. Names are compared
// case-insensitively.
func IsSecretOption(name string) bool {
	l := strings.ToLower(name)
	for _, p := range secretParts {
		if strings.Contains(l, p) {
			return true
		}
	}
	return false
}

// RedactOptions returns a copy of opts with the values of secret options
// (IsSecretOption) replaced by "[redacted]" and every other value passed
// through Redact.
func RedactOptions(opts map[string]string) map[string]string {
	out := make(map[string]string, len(opts))
	for k, v := range opts {
		if IsSecretOption(k) {
			out[k] = redactedMark
		} else {
			out[k] = Redact(v)
		}
	}
	return out
}

var redactors = []struct {
	re   *regexp.Regexp
	repl string
}{
	// PEM private keys, whole block.
	{regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`), "[redacted private key]"},
	// JAAS / properties style: password="..." (escapes inside quotes).
	{regexp.MustCompile(`(?i)((?:password|secret|token)[\w.-]*\s*[=:]\s*)"(?:[^"\\]|\\.)*("|$)`), `$1"` + redactedMark + `"`},
	// password=bare-value
	{regexp.MustCompile(`(?i)((?:password|secret|token)[\w.-]*\s*[=:]\s*)[^\s";,&]+`), `$1` + redactedMark},
	// Event Hubs / Service Bus connection strings and SAS tokens.
	{regexp.MustCompile(`(?i)(SharedAccessKey\s*=\s*)[^;"\s]+`), `$1` + redactedMark},
	{regexp.MustCompile(`(?i)(SharedAccessSignature\s*=\s*)[^;"]+`), `$1` + redactedMark},
	{regexp.MustCompile(`(?i)([?&\s]sig=)[^&;"\s]+`), `$1` + redactedMark},
}

// Redact scrubs the secrets it recognises from free text: password="…" and
// password=… (also secret/token keys) as in JAAS configurations,
// SharedAccessKey=… and SharedAccessSignature=… as in Event Hubs
// connection strings, sig=… of SAS tokens, and PEM private key blocks.
// It is a safety net for text of unknown origin; code that knows the
// secret values should also remove them exactly (Settings.Scrub).
func Redact(s string) string {
	for _, r := range redactors {
		s = r.re.ReplaceAllString(s, r.repl)
	}
	return s
}

// scrubber removes known secret values from text.
type scrubber struct {
	secrets []string // longest first
}

func newScrubber(secrets ...string) scrubber {
	var ss []string
	for _, s := range secrets {
		// Very short values would blank out ordinary words; they are
		// also not worth protecting this way (Redact still runs).
		if len(s) >= 4 {
			ss = append(ss, s)
		}
	}
	slices.SortFunc(ss, func(a, b string) int { return len(b) - len(a) })
	return scrubber{secrets: slices.Compact(ss)}
}

func (s scrubber) text(t string) string {
	for _, sec := range s.secrets {
		t = strings.ReplaceAll(t, sec, redactedMark)
	}
	return Redact(t)
}

// scrubbedError shows a scrubbed message but keeps the original chain for
// errors.Is / errors.As.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

func (s scrubber) err(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := s.text(msg)
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, err: err}
}
