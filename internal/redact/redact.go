// Package redact keeps secrets out of everything sluice shows: logs,
// errors, progress, the HTTP API and the UI. It knows which option names
// hold secrets (Kafka passwords and JAAS configurations, Event Hubs and
// Azure Storage connection strings, storage account keys, SAS tokens, S3
// keys), recognises secrets in free text (Text), and removes known secret
// values exactly (Scrubber). The Kafka security settings (kafkaauth) and
// the storage resolver (storage) share it.
package redact

import (
	"regexp"
	"slices"
	"strings"
)

// Mark replaces secret values.
const Mark = "[redacted]"

// secretParts are substrings of option names whose values are secrets.
// Spark's spark.redaction.regex default covers secret, password, token and
// access key names; the rest are the secret-bearing options of Kafka,
// Event Hubs and Hadoop's Azure and S3 connectors.
var secretParts = []string{
	"password", "secret", "jaas.config", "connectionstring", "ssl.key.pem",
	"keystore.key", "token", "credential", "sharedaccesskey", "sasl.oauthbearer",
	"account.key", "accountkey", "access.key", "accesskey", "fs.azure.sas.",
}

// IsSecretOption reports whether the value of the option name must never be
// shown: passwords, JAAS configurations, connection strings, private keys,
// tokens, storage account keys, SAS tokens, S3 access and secret keys.
// Names are compared case-insensitively.
func IsSecretOption(name string) bool {
	l := strings.ToLower(name)
	for _, p := range secretParts {
		if strings.Contains(l, p) {
			return true
		}
	}
	return false
}

// Options returns a copy of opts with the values of secret options
// (IsSecretOption) replaced by Mark and every other value passed through
// Text.
func Options(opts map[string]string) map[string]string {
	out := make(map[string]string, len(opts))
	for k, v := range opts {
		if IsSecretOption(k) {
			out[k] = Mark
		} else {
			out[k] = Text(v)
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
	{regexp.MustCompile(`(?i)((?:password|secret|token)[\w.-]*\s*[=:]\s*)"(?:[^"\\]|\\.)*("|$)`), `$1"` + Mark + `"`},
	// password=bare-value
	{regexp.MustCompile(`(?i)((?:password|secret|token)[\w.-]*\s*[=:]\s*)[^\s";,&]+`), `$1` + Mark},
	// Event Hubs / Service Bus connection strings and SAS tokens.
	{regexp.MustCompile(`(?i)(SharedAccessKey\s*=\s*)[^;"\s]+`), `$1` + Mark},
	{regexp.MustCompile(`(?i)(SharedAccessSignature\s*=\s*)[^;"]+`), `$1` + Mark},
	{regexp.MustCompile(`(?i)([?&\s]sig=)[^&;"\s]+`), `$1` + Mark},
	// Azure Storage connection strings.
	{regexp.MustCompile(`(?i)(AccountKey\s*=\s*)[^;"\s]+`), `$1` + Mark},
	// AWS signatures and security tokens in request URLs.
	{regexp.MustCompile(`(?i)([?&](?:X-Amz-Signature|X-Amz-Security-Token|X-Amz-Credential)=)[^&;"\s]+`), `$1` + Mark},
}

// Text scrubs the secrets it recognises from free text: password="…" and
// password=… (also secret/token keys) as in JAAS configurations,
// SharedAccessKey=… and SharedAccessSignature=… as in Event Hubs
// connection strings, AccountKey=… as in Azure Storage connection
// strings, sig=… of SAS tokens, AWS query-string signatures, and PEM
// private key blocks. It is a safety net for text of unknown origin; code
// that knows the secret values should also remove them exactly (Scrubber).
func Text(s string) string {
	for _, r := range redactors {
		s = r.re.ReplaceAllString(s, r.repl)
	}
	return s
}

// Scrubber removes known secret values from text and errors, then applies
// Text. The zero value removes nothing but still applies Text. Values are
// matched ignoring case: a message may quote a value lowercased (an
// interval parser does).
type Scrubber struct {
	secrets []string // longest first
	res     []*regexp.Regexp
}

// NewScrubber returns a Scrubber for the given secret values. Values
// shorter than 4 bytes are ignored: they would blank out ordinary words.
func NewScrubber(secrets ...string) Scrubber {
	var ss []string
	for _, s := range secrets {
		if len(s) >= 4 {
			ss = append(ss, s)
		}
	}
	slices.SortFunc(ss, func(a, b string) int { return len(b) - len(a) })
	ss = slices.Compact(ss)
	res := make([]*regexp.Regexp, len(ss))
	for i, sec := range ss {
		res[i] = regexp.MustCompile("(?i)" + regexp.QuoteMeta(sec))
	}
	return Scrubber{secrets: ss, res: res}
}

// With returns a Scrubber that also removes more.
func (s Scrubber) With(more ...string) Scrubber {
	return NewScrubber(append(slices.Clone(s.secrets), more...)...)
}

// Secrets returns the secret values the Scrubber removes.
func (s Scrubber) Secrets() []string { return slices.Clone(s.secrets) }

// Text removes the secrets from t.
func (s Scrubber) Text(t string) string {
	for i, sec := range s.secrets {
		t = strings.ReplaceAll(t, sec, Mark)
		t = s.res[i].ReplaceAllLiteralString(t, Mark)
	}
	return Text(t)
}

// scrubbedError shows a scrubbed message but keeps the original chain for
// errors.Is / errors.As.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// Err returns err with the secrets removed from its message; errors.Is and
// errors.As still see the original chain. A nil error stays nil.
func (s Scrubber) Err(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := s.Text(msg)
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, err: err}
}
