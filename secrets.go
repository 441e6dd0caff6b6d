package sluice

import (
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/redact"
	"github.com/sluice-stream/sluice/internal/registry"
)

// scrubber returns what removes the query's secrets from its errors and
// log lines: the value of every option given to the source, the sink, the
// dead-letter sink or the session that is a secret by name
// (redact.IsSecretOption) or by its format's spec, and the secrets inside
// those values (a JAAS line's password, a connection string's key). A
// secret given once may be used again in another option by mistake (the
// same ${VAR}); its value is scrubbed from every error and log line of the
// query, whichever option it appears in.
func (w *DataStreamWriter) scrubber() redact.Scrubber {
	var specs []*options.Spec
	if f, err := registry.Source(w.df.plan.Source().Format); err == nil {
		specs = append(specs, f.Options)
	}
	if f, err := registry.Sink(w.format); err == nil {
		specs = append(specs, f.Options)
	}
	if w.deadLetter != nil {
		if f, err := registry.Sink(w.deadLetter.format); err == nil {
			specs = append(specs, f.Options)
		}
	}
	specs = append(specs, registry.AdmissionOptions, registry.QueryOptions, registry.SessionConf)
	var secrets []string
	collect := func(m map[string]string) {
		for k, v := range m {
			secret := redact.IsSecretOption(k)
			for _, sp := range specs {
				secret = secret || sp.IsSecret(k)
			}
			if secret {
				secrets = append(secrets, v)
				secrets = append(secrets, redact.Embedded(v)...)
			}
		}
	}
	collect(w.df.plan.Source().Options)
	collect(w.options)
	if w.deadLetter != nil {
		collect(w.deadLetter.options)
	}
	collect(w.df.session.conf)
	return redact.NewScrubber(secrets...)
}
