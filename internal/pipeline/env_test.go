package pipeline

import (
	"errors"
	"testing"
)

func TestExpandEnv(t *testing.T) {
	env := envOf(map[string]string{"HOST": "kafka", "PORT": "9093", "EMPTY": "", "DOLLAR": "${NOT_EXPANDED}"})
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"", ""},
		{"${HOST}", "kafka"},
		{"${HOST}:${PORT}", "kafka:9093"},
		{"pre-${HOST}-post", "pre-kafka-post"},
		{"${MISSING:-localhost:9092}", "localhost:9092"},
		{"${HOST:-other}", "kafka"},
		{"${EMPTY:-fallback}", "fallback"},
		{"${EMPTY}", ""},
		{"${MISSING:-}", ""},
		{"$${HOST}", "${HOST}"},
		{"$$${HOST}", "$${HOST}"}, // "$" then the escape
		{"$HOST", "$HOST"},
		{"cost $5", "cost $5"},
		{"$$", "$$"},
		{"${DOLLAR}", "${NOT_EXPANDED}"}, // values are not expanded again
		{"a}b", "a}b"},
	}
	for _, tt := range tests {
		got, err := expandEnv(tt.in, env)
		if err != nil {
			t.Errorf("expandEnv(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("expandEnv(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestExpandEnvErrors(t *testing.T) {
	env := envOf(map[string]string{"HOST": "kafka"})
	tests := []struct{ in, want string }{
		{"${MISSING}", "environment variable MISSING is not set and has no default (use ${MISSING:-default})"},
		{"${HOST}:${PORT}", "environment variable PORT is not set and has no default (use ${PORT:-default})"},
		{"${HOST", `unterminated "${HOST" (missing "}"; write "$${" for a literal "${")`},
		{"${}", `invalid variable reference "${}" (want ${NAME} or ${NAME:-default})`},
		{"${9LIVES}", `invalid variable reference "${9LIVES}" (want ${NAME} or ${NAME:-default})`},
		{"${A-B}", `invalid variable reference "${A-B}" (want ${NAME} or ${NAME:-default})`},
		{"${A:?err}", `invalid variable reference "${A:?err}" (want ${NAME} or ${NAME:-default})`},
		{"${A:-${B}}", `nested "${" in the default of "${A:-${B}" is not supported`},
	}
	for _, tt := range tests {
		got, err := expandEnv(tt.in, env)
		if err == nil {
			t.Errorf("expandEnv(%q) = %q, want error %q", tt.in, got, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("expandEnv(%q) error\n got: %s\nwant: %s", tt.in, err, tt.want)
		}
	}
}

func TestExpandEnvNilLookup(t *testing.T) {
	if got, err := expandEnv("${X:-d}", nil); err != nil || got != "d" {
		t.Errorf("default with nil lookup = %q, %v", got, err)
	}
	_, err := expandEnv("${X}", nil)
	var me *missingEnvError
	if !errors.As(err, &me) || me.Name != "X" {
		t.Errorf("nil lookup: err = %v, want missing X", err)
	}
}
