// Package vacuum deletes the files of a sink's output that no log lists:
// data files of batches that were killed before they committed, and files
// the log removed long ago. Readers that follow the log (Spark, DuckDB's
// delta_scan, sluice) never see such files, but a plain glob of the
// directory does.
//
// The rules are Delta's VACUUM rules, applied to the file sink's
// _spark_metadata log too:
//
//   - a file the log lists is never deleted: for Delta, every file of the
//     current version and every file removed less than the retention ago
//     (an unexpired tombstone), i.e. every file a version within the
//     retention refers to; for the file sink, every file in the log;
//   - an unlisted file is deleted only when it is older than the retention
//     (its modification time), so a file a concurrent writer has written
//     but not yet committed survives;
//   - the log directories (_delta_log, _spark_metadata) and every other
//     directory whose name starts with "_" or "." (unless it is a partition
//     directory, col=value) are never entered;
//   - only files named as sinks name data files (part-…, their hidden
//     temporary and .crc companions) are candidates: anything else a user
//     keeps under the path is reported, never deleted (Delta deletes those
//     too; sluice does not).
//
// The default retention is Delta's delta.deletedFileRetentionDuration
// default, 7 days; a shorter one is refused unless forced (Delta's
// retentionDurationCheck). Everything goes through storage.Store (List,
// Delete), so it works wherever the output is stored.
package vacuum

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/internal/storage"
)

// DefaultRetention is how old an unlisted file must be before it is
// deleted, by default: Delta's delta.deletedFileRetentionDuration default.
const DefaultRetention = 7 * 24 * time.Hour

// Options configure Run.
type Options struct {
	// Retention is the minimum age of a deleted file (and, for Delta, of a
	// tombstone whose file is deleted).
	Retention time.Duration
	// MinRetention is the safe minimum: a Retention below it is refused
	// unless Force is set. Zero means DefaultRetention.
	MinRetention time.Duration
	// Force allows a Retention below MinRetention.
	Force bool
	// DryRun lists what would be deleted without deleting it.
	DryRun bool
	// Now is the current time (zero: time.Now()).
	Now time.Time
}

// Result is what Run found and did.
type Result struct {
	// Deleted are the names deleted (with DryRun: to be deleted), relative
	// to the output root, in listing order; Bytes is their total size.
	Deleted []string
	Bytes   int64
	// Listed counts the files the log lists (kept).
	Listed int
	// Recent counts unlisted data files younger than the retention (kept).
	Recent int
	// Other are files that are not sink data files (kept).
	Other []string
}

// String summarises the result ("3 files (1234 bytes); kept …").
func (r Result) String() string {
	return fmt.Sprintf("%d files (%d bytes); kept %d files the log lists, %d unlisted files younger than the retention, %d other files",
		len(r.Deleted), r.Bytes, r.Listed, r.Recent, len(r.Other))
}

// CheckRetention refuses a retention below the safe minimum unless forced.
func CheckRetention(o Options) error {
	minRet := o.MinRetention
	if minRet == 0 {
		minRet = DefaultRetention
	}
	if o.Retention < 0 {
		return fmt.Errorf("vacuum: retention %s is negative", o.Retention)
	}
	if o.Retention < minRet && !o.Force {
		return fmt.Errorf("vacuum: retention %s is shorter than the safe minimum %s: a file a concurrent writer is about to commit, "+
			"or that a reader of an older version still uses, could be deleted; use a longer retention, or force it if no writer or reader can be running",
			o.Retention, minRet)
	}
	return nil
}

// file is one listed file.
type file struct {
	name    string
	size    int64
	modTime time.Time
}

// Run vacuums the output in st: it lists the data files, then asks listed
// for the names the log lists (relative to st's root, slash-separated;
// read after the listing, so a file committed meanwhile counts as listed),
// and deletes the unlisted data files older than the retention.
func Run(ctx context.Context, st storage.Store, listed func() (map[string]bool, error), o Options) (Result, error) {
	if err := CheckRetention(o); err != nil {
		return Result{}, err
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	cutoff := now.Add(-o.Retention)
	var files []file
	if err := walk(ctx, st, "", &files); err != nil {
		return Result{}, err
	}
	keep, err := listed()
	if err != nil {
		return Result{}, err
	}
	var res Result
	for _, f := range files {
		base := path.Base(f.name)
		switch {
		case keep[f.name] || keep[companionOf(f.name)]:
			res.Listed++
		case !isDataFile(base):
			res.Other = append(res.Other, f.name)
		case f.modTime.After(cutoff):
			res.Recent++
		default:
			res.Deleted = append(res.Deleted, f.name)
			res.Bytes += f.size
		}
	}
	if o.DryRun || len(res.Deleted) == 0 {
		return res, nil
	}
	const chunk = 1000
	for i := 0; i < len(res.Deleted); i += chunk {
		if err := st.Delete(ctx, res.Deleted[i:min(i+chunk, len(res.Deleted))]...); err != nil {
			return res, fmt.Errorf("vacuum: %w", err)
		}
	}
	return res, nil
}

// walk lists the files under dir, recursively, skipping hidden and log
// directories.
func walk(ctx context.Context, st storage.Store, dir string, out *[]file) error {
	ents, err := st.List(ctx, dir)
	if err != nil {
		return fmt.Errorf("vacuum: list %q: %w", dir, err)
	}
	for _, e := range ents {
		name := e.Name
		if dir != "" {
			name = dir + "/" + e.Name
		}
		if e.IsDir {
			if hidden(e.Name) && !strings.Contains(e.Name, "=") {
				continue // _delta_log, _spark_metadata, .git, _checkpoint…
			}
			if err := walk(ctx, st, name, out); err != nil {
				return err
			}
			continue
		}
		*out = append(*out, file{name: name, size: e.Size, modTime: e.ModTime})
	}
	return nil
}

func hidden(base string) bool { return strings.HasPrefix(base, "_") || strings.HasPrefix(base, ".") }

// isDataFile reports whether a file name is one sinks give data files:
// part-…, a hidden temporary of one (.part-….tmp, .part-….tmp-…) or a
// Hadoop checksum of one (.part-….crc).
func isDataFile(base string) bool {
	if strings.HasPrefix(base, "part-") {
		return true
	}
	rest, ok := strings.CutPrefix(base, ".part-")
	return ok && (strings.HasSuffix(rest, ".tmp") || strings.Contains(rest, ".tmp-") || strings.HasSuffix(rest, ".crc"))
}

// companionOf returns the data file a checksum file belongs to
// (dir/.x.crc → dir/x), or "".
func companionOf(name string) string {
	dir, base := path.Split(name)
	if rest, ok := strings.CutPrefix(base, "."); ok {
		if data, ok := strings.CutSuffix(rest, ".crc"); ok {
			return dir + data
		}
	}
	return ""
}

// RelativeName converts a path a log lists — relative to the output root
// and URI-encoded (Delta's add paths), or an absolute URI or path (the
// file sink's file:, abfss://, s3a:// entries) — into a name relative to
// root. ok is false for a path outside root.
func RelativeName(root storage.Store, p string) (name string, ok bool, err error) {
	u, err := url.Parse(p)
	if err != nil {
		return "", false, fmt.Errorf("bad file path %q: %w", p, err)
	}
	if u.Scheme == "" && !strings.HasPrefix(u.Path, "/") {
		return u.Path, u.Path != "", nil // relative: decoded by Parse
	}
	r, err := url.Parse(storage.URI(root, ""))
	if err != nil || r.Scheme == "" {
		return "", false, fmt.Errorf("the output root %q is not a URI", storage.URI(root, ""))
	}
	if u.Scheme == "" {
		u.Scheme = "file" // a bare absolute path
	}
	if !strings.EqualFold(u.Scheme, r.Scheme) || u.User.String() != r.User.String() || !strings.EqualFold(u.Host, r.Host) {
		return "", false, nil
	}
	prefix := strings.TrimSuffix(r.Path, "/") + "/"
	rest, ok := strings.CutPrefix(u.Path, prefix)
	if !ok || rest == "" {
		return "", false, nil
	}
	return rest, true, nil
}
