package file

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/storage"
	"github.com/sluice-stream/sluice/internal/vacuum"
)

// Start-up vacuum options, shared with the Delta sink.
const (
	OptVacuumOnStart   = "sluice.vacuumOnStart"
	OptVacuumRetention = "sluice.vacuumRetention"
	// MinStartRetention is the shortest sluice.vacuumRetention: a batch
	// takes far less to write and commit its files, so a file younger than
	// this may belong to a writer that is about to commit it.
	MinStartRetention = time.Hour
)

var (
	// VacuumOnStartField turns the start-up vacuum on.
	VacuumOnStartField = options.Field{Name: OptVacuumOnStart, Type: options.Bool, Default: "false",
		Doc: "Vacuums the output when the query starts (as `sluice vacuum`): deletes the data files no log lists (left by batches killed before their commit) once older than sluice.vacuumRetention, never a file the log lists."}
	// VacuumRetentionField is the start-up vacuum's retention.
	VacuumRetentionField = options.Field{Name: OptVacuumRetention, Type: options.Duration, Default: "7 days", Hint: "allowed: an interval of at least 1 hour, such as \"7 days\" or \"24 hours\"",
		Doc: "How old an unlisted file (and, for Delta, a removed one) must be before the start-up vacuum deletes it; at least 1 hour."}
)

// StartVacuum is the parsed start-up vacuum options.
type StartVacuum struct {
	On        bool
	Retention time.Duration
}

// ParseStartVacuum reads sluice.vacuumOnStart and sluice.vacuumRetention.
func ParseStartVacuum(v options.Values) (StartVacuum, error) {
	sv := StartVacuum{On: v.Bool(OptVacuumOnStart), Retention: v.Duration(OptVacuumRetention)}
	if sv.Retention < MinStartRetention {
		return sv, &options.Error{Option: OptVacuumRetention, Value: v.String(OptVacuumRetention), Allowed: VacuumRetentionField.Hint}
	}
	return sv, nil
}

// Run vacuums the output whose directory is root with vac, when on,
// logging what it did; vac is the sink's Vacuum.
func (sv StartVacuum) Run(root storage.Store, log *slog.Logger, vac func(context.Context, storage.Store, vacuum.Options) (vacuum.Result, error)) error {
	if !sv.On {
		return nil
	}
	res, err := vac(context.Background(), root, vacuum.Options{Retention: sv.Retention, Force: true})
	if err != nil {
		return fmt.Errorf("%s: %w", OptVacuumOnStart, err)
	}
	log.Info("vacuumed the output at start", "path", storage.URI(root, ""), "retention", sv.Retention, "deletedFiles", len(res.Deleted), "deletedBytes", res.Bytes,
		"listedFiles", res.Listed, "recentFiles", res.Recent, "otherFiles", len(res.Other))
	return nil
}

// Vacuum deletes the data files under the output directory root that its
// _spark_metadata log does not list and that are older than the retention
// (see package vacuum for the rules).
func Vacuum(ctx context.Context, root storage.Store, o vacuum.Options) (vacuum.Result, error) {
	return vacuum.Run(ctx, root, func() (map[string]bool, error) { return LoggedNames(root) }, o)
}
