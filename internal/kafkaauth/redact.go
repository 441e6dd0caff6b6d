package kafkaauth

import "github.com/sluice-stream/sluice/internal/redact"

// redactedMark replaces secret values.
const redactedMark = redact.Mark

// IsSecretOption reports whether the value of the option name must never be
// shown (logs, errors, progress, /api, UI): passwords, JAAS configurations,
// Event Hubs connection strings, private keys, tokens (see
// redact.IsSecretOption). Names are compared case-insensitively.
func IsSecretOption(name string) bool { return redact.IsSecretOption(name) }

// RedactOptions returns a copy of opts with the values of secret options
// (IsSecretOption) replaced by "[redacted]" and every other value passed
// through Redact.
func RedactOptions(opts map[string]string) map[string]string { return redact.Options(opts) }

// Redact scrubs the secrets it recognises from free text (see
// redact.Text): password="…" and password=… as in JAAS configurations,
// SharedAccessKey=… and SharedAccessSignature=… as in Event Hubs
// connection strings, sig=… of SAS tokens, and PEM private key blocks.
func Redact(s string) string { return redact.Text(s) }

// scrubber removes known secret values from text.
type scrubber = redact.Scrubber

func newScrubber(secrets ...string) scrubber { return redact.NewScrubber(secrets...) }
