package state

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-stream/sluice/internal/options"
)

// ProviderKind is which state store implementation a query uses.
type ProviderKind string

const (
	// MemoryProvider keeps each version in memory (a copy-on-write B-tree)
	// and writes a delta file per commit plus periodic snapshots: Spark's
	// HDFSBackedStateStoreProvider. The default.
	MemoryProvider ProviderKind = "memory"
	// DiskProvider keeps state in a Pebble LSM on local disk with a
	// checkpoint per version: Spark's RocksDBStateStoreProvider.
	DiskProvider ProviderKind = "disk"
)

// Option names (Spark's where Spark has one).
const (
	OptProviderClass              = "spark.sql.streaming.stateStore.providerClass"
	OptMinDeltasForSnapshot       = "spark.sql.streaming.stateStore.minDeltasForSnapshot"
	OptMinBatchesToRetain         = "spark.sql.streaming.minBatchesToRetain"
	OptMaxBatchesToRetainInMemory = "spark.sql.streaming.maxBatchesToRetainInMemory"
	OptCompressionCodec           = "spark.sql.streaming.stateStore.compression.codec"
	OptStateSchemaCheck           = "spark.sql.streaming.stateStore.stateSchemaCheck"
	OptDiskMemory                 = "sluice.state.disk.memory"
	OptDiskLocalDir               = "sluice.state.disk.localDir"
	OptSync                       = "sluice.state.sync"
)

// Spark's provider class names.
const (
	SparkHDFSProviderClass    = "org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider"
	SparkRocksDBProviderClass = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
)

// providerNames maps every accepted spelling (lower-cased) to a provider:
// Spark's full class names, their simple names, and short names.
var providerNames = map[string]ProviderKind{
	strings.ToLower(SparkHDFSProviderClass): MemoryProvider,
	"hdfsbackedstatestoreprovider":          MemoryProvider,
	"memory":                                MemoryProvider,
	"hdfs":                                  MemoryProvider,
	strings.ToLower(SparkRocksDBProviderClass): DiskProvider,
	"rocksdbstatestoreprovider":                DiskProvider,
	"disk":                                     DiskProvider,
	"rocksdb":                                  DiskProvider,
	"pebble":                                   DiskProvider,
}

// ParseProvider maps a spark.sql.streaming.stateStore.providerClass value to
// a provider. Names are matched case-insensitively.
func ParseProvider(s string) (ProviderKind, error) {
	if k, ok := providerNames[strings.ToLower(strings.TrimSpace(s))]; ok {
		return k, nil
	}
	return "", &options.Error{Option: OptProviderClass, Value: s,
		Allowed: "allowed: memory (also hdfs, " + SparkHDFSProviderClass + ") or disk (also rocksdb, pebble, " + SparkRocksDBProviderClass + ")"}
}

// SparkClass is the class name recorded for the provider in offsets/N, so a
// checkpoint reads as Spark's.
func (k ProviderKind) SparkClass() string {
	if k == DiskProvider {
		return SparkRocksDBProviderClass
	}
	return SparkHDFSProviderClass
}

// Config is how stores are kept. The zero value is not valid; start from
// DefaultConfig or ParseConfig.
type Config struct {
	Provider ProviderKind
	// MinDeltasForSnapshot: Maintenance snapshots a version when more deltas
	// than this follow the last snapshot (memory provider).
	MinDeltasForSnapshot int
	// MinBatchesToRetain: versions that must stay recoverable.
	MinBatchesToRetain int
	// MaxBatchesToRetainInMemory: versions the memory provider caches.
	MaxBatchesToRetainInMemory int
	// Codec compresses delta and snapshot files: "lz4" (Spark's default).
	Codec string
	// SchemaCheck checks key/value schemas against the recorded ones.
	SchemaCheck bool
	// MemoryLimit caps one memory-provider store's state bytes (≤ 0: none).
	MemoryLimit int64
	// Budget, when not nil, is shared by all stores of the query.
	Budget *Budget
	// DiskMemory is one disk-provider store's memory allowance: its memtables
	// get a quarter each (two may be live) and the block cache the rest.
	DiskMemory int64
	// DiskLocalDir is where disk-provider working databases live; "" puts
	// them beside the versions (state/<op>/<part>/_working), which lets
	// checkpoints hard-link SSTs instead of copying them.
	DiskLocalDir string
	// Sync is how the memory provider makes delta files durable; "" is
	// SyncBatch.
	Sync SyncMode
}

// Defaults (Spark's where Spark has one).
const (
	DefaultMinDeltasForSnapshot       = 10
	DefaultMinBatchesToRetain         = 100
	DefaultMaxBatchesToRetainInMemory = 2
	DefaultDiskMemory                 = 16 << 20
	// MinDiskMemory is the smallest disk-provider allowance.
	MinDiskMemory = 2 << 20
)

// DefaultConfig is Spark's defaults with the memory provider.
func DefaultConfig() Config {
	return Config{
		Provider:                   MemoryProvider,
		MinDeltasForSnapshot:       DefaultMinDeltasForSnapshot,
		MinBatchesToRetain:         DefaultMinBatchesToRetain,
		MaxBatchesToRetainInMemory: DefaultMaxBatchesToRetainInMemory,
		Codec:                      "lz4",
		SchemaCheck:                true,
		DiskMemory:                 DefaultDiskMemory,
		Sync:                       SyncBatch,
	}
}

// ConfigSpec describes the state store settings ParseConfig reads (Spark's
// SQL confs, plus sluice's disk-provider settings); the registry lists it
// among the session configuration, so docs/reference.md documents it.
var ConfigSpec = &options.Spec{
	What: "state store",
	Fields: []options.Field{
		{Name: OptProviderClass, Type: options.String, Default: "memory",
			Allowed: []string{"memory", "hdfs", "HDFSBackedStateStoreProvider", SparkHDFSProviderClass, "disk", "rocksdb", "pebble", "RocksDBStateStoreProvider", SparkRocksDBProviderClass},
			Doc:     "State store provider: memory (Spark's HDFS-backed provider: versions in memory, a delta file per batch, periodic snapshots; state counts against sluice.memory.budget) or disk (Spark's RocksDB provider: an on-disk LSM, Pebble, for state larger than memory). Pinned by the checkpoint."},
		{Name: OptMinDeltasForSnapshot, Type: options.Int, Min: 1, Default: strconv.Itoa(DefaultMinDeltasForSnapshot),
			Doc: "The memory provider snapshots a state version when more delta files than this follow the last snapshot."},
		{Name: OptMinBatchesToRetain, Type: options.Int, Min: 1, Default: strconv.Itoa(DefaultMinBatchesToRetain),
			Doc: "Batches whose offsets, commits and state versions stay recoverable, as Spark: after logging batch N everything below N − this is deleted (this + 1 files stay in the offsets and commits logs); older state versions go too."},
		{Name: OptMaxBatchesToRetainInMemory, Type: options.Int, Min: 0, Default: strconv.Itoa(DefaultMaxBatchesToRetainInMemory),
			Doc: "State versions the memory provider keeps in memory per store (they share unchanged nodes); when a batch starts, those at or below its base beyond this − 1 are dropped (no batch of the run opens them again), so the base alone at the default 2 until the batch commits."},
		{Name: OptCompressionCodec, Type: options.Enum, Default: "lz4", Allowed: []string{"lz4"},
			Doc: "Compression of delta and snapshot files."},
		{Name: OptStateSchemaCheck, Type: options.Bool, Default: "true",
			Doc: "Check the key and value schemas of the state against the checkpoint's at start; a query changed in a way its state cannot follow fails with STATE_STORE_KEY_SCHEMA_NOT_COMPATIBLE or STATE_STORE_VALUE_SCHEMA_NOT_COMPATIBLE."},
		{Name: OptDiskMemory, Type: options.Size, DefaultDoc: "16 MiB, or the state share of sluice.memory.budget split over the shuffle partitions (at least 2 MiB)",
			Doc: "Memory of one disk-provider store (memtables and block cache)."},
		{Name: OptDiskLocalDir, Type: options.Path,
			Doc: "Where disk-provider working databases live (default: beside their versions under the checkpoint's state directory)."},
		{Name: OptSync, Type: options.Enum, Default: string(SyncBatch), Allowed: []string{string(SyncBatch), string(SyncFile)},
			Doc: "How the memory provider makes a batch's delta files durable: batch writes them in place and makes them durable together, with one syncfs(2) of the checkpoint's file system before the batch is committed (Linux 5.8 or later on ext4, xfs, btrfs, f2fs or tmpfs; elsewhere it is file); file writes each to a temporary file, fsyncs it, renames it into place and fsyncs its directory. batch flushes every dirty file of that file system: on a disk shared with heavy writers, file may be faster."},
	},
}

// ParseConfig reads the ConfigSpec options from a query's session
// configuration (other keys are ignored); unset ones keep DefaultConfig's
// values. Errors name the option and the allowed values.
func ParseConfig(m map[string]string) (Config, error) {
	c := DefaultConfig()
	own := options.Only(m, ConfigSpec)
	if errs := ConfigSpec.Problems(own); len(errs) > 0 {
		return c, errs[0]
	}
	v := ConfigSpec.Values(own)
	if s, ok := v.Get(OptProviderClass); ok {
		k, err := ParseProvider(s)
		if err != nil {
			return c, err
		}
		c.Provider = k
	}
	c.MinDeltasForSnapshot = int(v.Int64(OptMinDeltasForSnapshot))
	c.MinBatchesToRetain = int(v.Int64(OptMinBatchesToRetain))
	c.MaxBatchesToRetainInMemory = int(v.Int64(OptMaxBatchesToRetainInMemory))
	c.Codec = strings.ToLower(v.Enum(OptCompressionCodec))
	c.SchemaCheck = v.Bool(OptStateSchemaCheck)
	if v.Has(OptDiskMemory) {
		c.DiskMemory = v.Size(OptDiskMemory)
	}
	if c.DiskMemory < MinDiskMemory {
		return c, &options.Error{Option: OptDiskMemory, Value: own[OptDiskMemory], Allowed: "allowed: at least 2MiB"}
	}
	c.DiskLocalDir = v.String(OptDiskLocalDir)
	c.Sync = SyncMode(strings.ToLower(v.Enum(OptSync)))
	return c, nil
}

func (c Config) validate() error {
	switch {
	case c.Provider != MemoryProvider && c.Provider != DiskProvider:
		return fmt.Errorf("state: unknown provider %q", c.Provider)
	case c.MinDeltasForSnapshot < 1:
		return fmt.Errorf("state: %s must be ≥ 1, got %d", OptMinDeltasForSnapshot, c.MinDeltasForSnapshot)
	case c.MinBatchesToRetain < 1:
		return fmt.Errorf("state: %s must be ≥ 1, got %d", OptMinBatchesToRetain, c.MinBatchesToRetain)
	case c.MaxBatchesToRetainInMemory < 0:
		return fmt.Errorf("state: %s must be ≥ 0, got %d", OptMaxBatchesToRetainInMemory, c.MaxBatchesToRetainInMemory)
	case c.Codec != "lz4":
		return fmt.Errorf("state: %s must be lz4, got %q", OptCompressionCodec, c.Codec)
	case c.Sync != "" && c.Sync != SyncBatch && c.Sync != SyncFile:
		return fmt.Errorf("state: %s must be batch or file, got %q", OptSync, c.Sync)
	case c.Provider == DiskProvider && c.DiskMemory < MinDiskMemory:
		return fmt.Errorf("state: %s must be at least 2MiB, got %d", OptDiskMemory, c.DiskMemory)
	}
	return nil
}
