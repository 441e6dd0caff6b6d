package file

import (
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/options"
)

// Partition discovery, as Spark's: directories named key=value between the
// base path and a file become columns, appended to the row schema in the
// order they appear in the path, with types inferred from the values
// present when the query starts (spark.sql.sources.partitionColumnTypeInference
// on): INT, then BIGINT, then DOUBLE (Spark's DECIMAL(38,0) for integers
// beyond BIGINT is DOUBLE here), then TIMESTAMP ("yyyy-MM-dd HH:mm:ss[.f]"),
// then DATE ("yyyy-MM-dd"), else STRING; the values of one column widen to
// a common type. Values are unescaped (%XX); __HIVE_DEFAULT_PARTITION__ is
// NULL. A value a later directory holds that does not fit the type is NULL.

// hiveDefaultPartition is Spark's name for a NULL partition value.
const hiveDefaultPartition = "__HIVE_DEFAULT_PARTITION__"

// PartitionColumn is one discovered partition column.
type PartitionColumn struct {
	Name string
	Type batch.Kind
}

// partitionValues returns the key=value components of the directories
// between base and the file at path, in path order. Paths are local paths
// or URIs, both with "/" separators.
func partitionValues(base, path string) [][2]string {
	dir := path[:max(strings.LastIndexByte(path, '/'), 0)]
	rel, ok := strings.CutPrefix(dir, strings.TrimSuffix(base, "/")+"/")
	if !ok || rel == "" {
		return nil
	}
	var out [][2]string
	for _, comp := range strings.Split(rel, "/") {
		k, v, ok := strings.Cut(comp, "=")
		if !ok || k == "" {
			continue
		}
		if uk, err := url.PathUnescape(k); err == nil {
			k = uk
		}
		if uv, err := url.PathUnescape(v); err == nil {
			v = uv
		}
		out = append(out, [2]string{k, v})
	}
	return out
}

var (
	partitionTimestamp = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,9})?$`)
	partitionDate      = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

// inferPartitionType is Spark's inference of one value's type; Null for
// the default partition name.
func inferPartitionType(v string) batch.Kind {
	switch {
	case v == hiveDefaultPartition:
		return batch.Null
	case isInt(v, 32):
		return batch.Int
	case isInt(v, 64):
		return batch.Long
	case isFloat(v):
		return batch.Double
	case partitionTimestamp.MatchString(v):
		if _, err := time.Parse("2006-01-02 15:04:05.999999999", v); err == nil {
			return batch.Timestamp
		}
	case partitionDate.MatchString(v):
		if _, err := time.Parse("2006-01-02", v); err == nil {
			return batch.Date
		}
	}
	return batch.String
}

func isInt(v string, bits int) bool {
	_, err := strconv.ParseInt(v, 10, bits)
	return err == nil
}

func isFloat(v string) bool {
	f, err := strconv.ParseFloat(v, 64)
	return err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) && !strings.ContainsAny(v, "xXpP_")
}

// widerPartitionType merges two inferred types as Spark does: numbers
// widen, a date and a timestamp make a timestamp, anything else a string.
func widerPartitionType(a, b batch.Kind) batch.Kind {
	switch {
	case a == b:
		return a
	case a == batch.Null:
		return b
	case b == batch.Null:
		return a
	}
	rank := map[batch.Kind]int{batch.Int: 1, batch.Long: 2, batch.Double: 3}
	if rank[a] > 0 && rank[b] > 0 {
		if rank[a] > rank[b] {
			return a
		}
		return b
	}
	if (a == batch.Date && b == batch.Timestamp) || (a == batch.Timestamp && b == batch.Date) {
		return batch.Timestamp
	}
	return batch.String
}

// discoverPartitions finds the partition columns of the files (Spark's
// inferPartitioning): every file under key=value directories must have
// the same column names in the same order, else it is an error naming
// both lists; a file directly in its base directory has none (its
// partition values are NULL, as in Spark).
func discoverPartitions(cfg *Config, files []fileInfo) ([]PartitionColumn, error) {
	var cols []PartitionColumn
	var first string
	for _, f := range files {
		base := cfg.partitionBaseOf(f.path)
		if cfg.BasePath != "" && !strings.HasPrefix(f.path, strings.TrimSuffix(base, "/")+"/") {
			return nil, &options.Error{Option: "basePath", Spark: fmt.Sprintf("Wrong basePath %s for the root path: %s", cfg.BasePath, f.path),
				Allowed: "allowed: a directory above every file the path reads"}
		}
		kv := partitionValues(base, f.path)
		if len(kv) == 0 {
			continue
		}
		if cols == nil {
			first = f.path
			for _, p := range kv {
				cols = append(cols, PartitionColumn{Name: p[0], Type: batch.Null})
			}
		}
		if len(kv) != len(cols) {
			return nil, conflictingPartitions(first, f.path, cols, kv)
		}
		for i, p := range kv {
			if !strings.EqualFold(p[0], cols[i].Name) {
				return nil, conflictingPartitions(first, f.path, cols, kv)
			}
			t := batch.String
			if !cfg.PartitionTypeInference {
				if p[1] == hiveDefaultPartition {
					t = batch.Null
				}
			} else {
				t = inferPartitionType(p[1])
			}
			cols[i].Type = widerPartitionType(cols[i].Type, t)
		}
	}
	for i := range cols {
		if cols[i].Type == batch.Null {
			cols[i].Type = batch.String // only default partitions: Spark's NullType, read as STRING here
		}
	}
	return cols, nil
}

func conflictingPartitions(a, b string, cols []PartitionColumn, kv [][2]string) error {
	var an, bn []string
	for _, c := range cols {
		an = append(an, c.Name)
	}
	for _, p := range kv {
		bn = append(bn, p[0])
	}
	return fmt.Errorf("file source: conflicting partition column names detected: %s has [%s], %s has [%s]; "+
		"every file must sit under the same key=value directories (or set basePath, or recursiveFileLookup=true to read no partition columns)",
		a, strings.Join(an, ", "), b, strings.Join(bn, ", "))
}

// appendPartitionValue appends value v, converted to c's type, n times
// (NULL when it does not fit the type).
func appendPartitionValue(c *batch.Column, v string, n int) {
	if v == hiveDefaultPartition {
		for range n {
			c.AppendNull()
		}
		return
	}
	var ok bool
	var i int64
	var f float64
	switch c.Type {
	case batch.Int:
		i, ok = parseIntBits(v, 32)
	case batch.Long:
		i, ok = parseIntBits(v, 64)
	case batch.Double:
		var err error
		f, err = strconv.ParseFloat(v, 64)
		ok = err == nil
	case batch.Timestamp:
		t, err := time.Parse("2006-01-02 15:04:05.999999999", v)
		if err != nil { // a date in a column widened to timestamp
			t, err = time.Parse("2006-01-02", v)
		}
		i, ok = t.UnixMicro(), err == nil
	case batch.Date:
		t, err := time.Parse("2006-01-02", v)
		i, ok = t.Unix()/86400, err == nil
	default:
		ok = true
	}
	for range n {
		switch {
		case !ok:
			c.AppendNull()
		case c.Type == batch.Double:
			c.AppendFloat(f)
		case c.Type == batch.String || c.Type == batch.Binary:
			c.AppendBytes([]byte(v))
		default:
			c.AppendInt(i)
		}
	}
}

func parseIntBits(v string, bits int) (int64, bool) {
	i, err := strconv.ParseInt(v, 10, bits)
	return i, err == nil
}

// partitionBaseOf is where partition discovery starts for the file at
// path (Spark's basePaths): the basePath option if set; else the root the
// path option reached the file from, that is the directory the pattern
// (or one of its {a,b} alternatives) matched and the file sits under, or
// the file's own directory when the pattern matched the file itself. So
// `in` and `in/*` read `in/k=1/f` with column k only in the first case:
// there `in` is the base, in the second `in/k=1` is (set basePath to `in`
// to get k, as in Spark).
func (c *Config) partitionBaseOf(path string) string {
	if c.BasePath != "" {
		return c.BasePath
	}
	fc := strings.Split(path, "/")
	for _, p := range mustExpand(c.Path) {
		pc := strings.Split(strings.TrimSuffix(p, "/"), "/")
		if len(pc) > len(fc) {
			continue
		}
		ok := true
		for i := 0; i < len(pc) && ok; i++ {
			if hasGlob(pc[i]) {
				m, err := filepath.Match(pc[i], fc[i])
				ok = err == nil && m
			} else {
				ok = pc[i] == fc[i]
			}
		}
		if !ok {
			continue
		}
		if len(pc) == len(fc) {
			break // the pattern matched the file
		}
		return strings.Join(fc[:len(pc)], "/")
	}
	return path[:max(strings.LastIndexByte(path, '/'), 0)]
}
