package source

import (
	"log/slog"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/storage"
)

// Format describes a source format to the registry (internal/registry):
// its name, its options, how its schema is derived, what it can do and how
// to create it. Each source package declares its own Format next to its
// option parser.
type Format struct {
	// Name is the format name users write, e.g. "kafka".
	Name string
	// Summary is one line for listings ("sluice options").
	Summary string
	// Options is the typed description of the format's options. The
	// registry checks a query's options against it once and hands the
	// checked Values to Schema and Open.
	Options *options.Spec
	// SchemaDoc says what the rows look like and how the schema is derived
	// (fixed, from the "schema" option, from includeHeaders…).
	SchemaDoc string
	// Replayable sources can re-read any logged range after a restart, so a
	// replayed batch holds the same rows (exactly-once with an idempotent
	// sink). Socket is not.
	Replayable bool
	// Schema validates the options without connecting and returns the
	// schema of the rows the source will produce. env.Storage is set (the
	// file source infers a schema from files that may be on an object
	// store); the rest of env may be empty.
	Schema func(v options.Values, env Env) (batch.Schema, error)
	// Open creates the source; it may connect.
	Open func(v options.Values, env Env) (Source, error)
}

// Env is what creating a source may need besides its options.
type Env struct {
	// State is where a source that keeps its own log (the file source's
	// files seen) puts it: the checkpoint's sources/0, as in Spark, on the
	// checkpoint's store (local or an object store).
	State storage.Store
	// Storage resolves paths and object-store URIs with the session's
	// storage settings; nil resolves with the environment's credentials
	// only.
	Storage *storage.Resolver
	// Logger is the query's logger; never nil.
	Logger *slog.Logger
	// Conf is the session's settings (spark.sql.*, sluice.*) for the
	// sources that read one (the file source's partition type
	// inference); nil = every default.
	Conf map[string]string
}
