package redact

import (
	"context"
	"log/slog"
	"regexp"
)

// embedded find the secrets inside a secret value: the password of a JAAS
// line, the key of a connection string, the signature of a SAS token.
var embedded = []*regexp.Regexp{
	regexp.MustCompile(`(?i)(?:password|secret|token)[\w.-]*\s*[=:]\s*"((?:[^"\\]|\\.)*)"`),
	regexp.MustCompile(`(?i)(?:password|secret|token)[\w.-]*\s*[=:]\s*([^\s";,&]+)`),
	regexp.MustCompile(`(?i)SharedAccessKey\s*=\s*([^;"\s]+)`),
	regexp.MustCompile(`(?i)AccountKey\s*=\s*([^;"\s]+)`),
	regexp.MustCompile(`(?i)[?&\s]sig=([^&;"\s]+)`),
}

// Embedded returns the secrets inside a secret option's value besides the
// value itself: the password of a JAAS configuration, the key of an Event
// Hubs or Azure Storage connection string, the signature of a SAS token.
// A secret used there may also appear alone elsewhere (the same ${VAR} in
// another option), where only the part is recognisable.
func Embedded(value string) []string {
	var out []string
	for _, re := range embedded {
		for _, m := range re.FindAllStringSubmatch(value, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// Handler returns a slog.Handler that scrubs the secrets from every
// message and attribute before h sees them: the logger of a query that
// was given secrets.
func (s Scrubber) Handler(h slog.Handler) slog.Handler {
	if sh, ok := h.(scrubHandler); ok {
		return scrubHandler{h: sh.h, s: sh.s.With(s.secrets...)}
	}
	return scrubHandler{h: h, s: s}
}

type scrubHandler struct {
	h slog.Handler
	s Scrubber
}

func (sh scrubHandler) Enabled(ctx context.Context, l slog.Level) bool { return sh.h.Enabled(ctx, l) }

func (sh scrubHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, sh.s.Text(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(sh.attr(a))
		return true
	})
	return sh.h.Handle(ctx, out)
}

func (sh scrubHandler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = sh.attr(a)
	}
	return scrubHandler{h: sh.h.WithAttrs(clean), s: sh.s}
}

func (sh scrubHandler) WithGroup(name string) slog.Handler {
	return scrubHandler{h: sh.h.WithGroup(name), s: sh.s}
}

// attr scrubs an attribute's value: strings, errors and anything printed
// with %v become scrubbed strings; groups are scrubbed member by member.
func (sh scrubHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, sh.s.Text(v.String()))
	case slog.KindGroup:
		g := v.Group()
		clean := make([]any, len(g))
		for i, m := range g {
			clean[i] = sh.attr(m)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, sh.s.Text(err.Error()))
		}
		return slog.String(a.Key, sh.s.Text(v.String()))
	}
	return slog.Attr{Key: a.Key, Value: v}
}
