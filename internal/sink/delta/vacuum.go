package delta

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-stream/sluice/internal/storage"
	"github.com/sluice-stream/sluice/internal/vacuum"
)

// Vacuum deletes the data files of the table whose directory is root that
// no version within the retention refers to and that are older than the
// retention, as Delta's VACUUM (see package vacuum for the rules). A zero
// o.MinRetention means the table's delta.deletedFileRetentionDuration (7
// days by default; see Retention).
func Vacuum(ctx context.Context, root storage.Store, o vacuum.Options) (vacuum.Result, error) {
	if o.MinRetention == 0 {
		tableRet, err := Retention(root)
		if err != nil {
			return vacuum.Result{}, fmt.Errorf("delta vacuum: %w", err)
		}
		o.MinRetention = tableRet
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	return vacuum.Run(ctx, root, func() (map[string]bool, error) { return VacuumListed(root, o.Now, o.Retention) }, o)
}
