package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/sluice-stream/sluice/internal/storage"
)

// inputFS is where the input files are: the local file system, or an
// object store (abfss://…, s3a://…). Paths are absolute local paths or
// URIs.
type inputFS interface {
	// list lists the input files of a path or glob pattern (see
	// listFiles), sorted by path; recursive is recursiveFileLookup.
	list(ctx context.Context, pattern, nameFilter string, recursive bool) ([]fileInfo, error)
	open(ctx context.Context, path string) (io.ReadCloser, error)
	remove(ctx context.Context, path string) error
	// archive moves path under the archive directory, keeping its path
	// below it (Spark's sourceArchiveDir layout).
	archive(ctx context.Context, path, archiveDir string) error
}

// Option configures New and SchemaOf.
type Option func(*sourceOptions)

type sourceOptions struct {
	resolver *storage.Resolver
	conf     map[string]string
}

// WithResolver reads object-store paths with r's credentials. Without it a
// URI is read with the environment's credentials only.
func WithResolver(r *storage.Resolver) Option { return func(o *sourceOptions) { o.resolver = r } }

// PartitionTypeInferenceConf is Spark's session setting that turns the
// type inference of partition columns off (every partition column is then
// a STRING).
const PartitionTypeInferenceConf = "spark.sql.sources.partitionColumnTypeInference.enabled"

// WithSessionConf applies the session's settings the file source reads
// (PartitionTypeInferenceConf); a key that is not set keeps its default.
func WithSessionConf(conf map[string]string) Option {
	return func(o *sourceOptions) { o.conf = conf }
}

// newInputFS applies the options to cfg and returns where its files are.
func newInputFS(cfg *Config, opts []Option) (inputFS, error) {
	var so sourceOptions
	for _, o := range opts {
		o(&so)
	}
	cfg.PartitionTypeInference = true
	for k, v := range so.conf {
		if strings.EqualFold(k, PartitionTypeInferenceConf) {
			cfg.PartitionTypeInference = !strings.EqualFold(strings.TrimSpace(v), "false")
		}
	}
	if !cfg.remote {
		return localFS{}, nil
	}
	r := so.resolver
	if r == nil {
		var err error
		if r, err = storage.NewResolver(nil); err != nil {
			return nil, err
		}
	}
	root, rest, _ := splitRemote(cfg.Path)
	_ = rest
	loc, err := storage.ParseLocation(root)
	if err != nil {
		return nil, fmt.Errorf("file source: %w", err)
	}
	st, err := r.ResolveLocation(context.Background(), loc)
	if err != nil {
		return nil, fmt.Errorf("file source: %w", err)
	}
	return &remoteFS{root: root, st: st, resolver: r}, nil
}

// localFS is the local file system.
type localFS struct{}

func (localFS) list(_ context.Context, pattern, nameFilter string, recursive bool) ([]fileInfo, error) {
	return listFiles(pattern, nameFilter, recursive)
}

func (localFS) open(_ context.Context, p string) (io.ReadCloser, error) { return os.Open(p) }

func (localFS) remove(_ context.Context, p string) error {
	err := os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (localFS) archive(_ context.Context, p, archiveDir string) error {
	dst := filepath.Join(archiveDir, p)
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("the target %s exists", dst)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("creating the archive directory: %w", err)
	}
	if err := moveFile(p, dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

var remoteRE = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*://[^/]+)(/.*)?$`)

// splitRemote splits an object-store path or pattern into the URI of its
// container or bucket and the key pattern inside it.
func splitRemote(p string) (root, key string, ok bool) {
	m := remoteRE.FindStringSubmatch(p)
	if m == nil {
		return "", "", false
	}
	return m[1], strings.Trim(m[2], "/"), true
}

// remoteFS is a container or bucket of an object store; paths are URIs
// under root.
type remoteFS struct {
	root     string // "s3a://bucket"
	st       storage.Store
	resolver *storage.Resolver
}

func (r *remoteFS) key(p string) (string, error) {
	k, ok := strings.CutPrefix(p, r.root+"/")
	if !ok || k == "" {
		return "", fmt.Errorf("%s is not a file under %s", p, r.root)
	}
	return k, nil
}

func (r *remoteFS) uri(key string) string {
	if key == "" {
		return r.root
	}
	return r.root + "/" + key
}

func (r *remoteFS) open(ctx context.Context, p string) (io.ReadCloser, error) {
	k, err := r.key(p)
	if err != nil {
		return nil, err
	}
	return r.st.Open(ctx, k)
}

func (r *remoteFS) remove(ctx context.Context, p string) error {
	k, err := r.key(p)
	if err != nil {
		return err
	}
	return r.st.Delete(ctx, k)
}

// archive copies the object under the archive directory (object stores
// have no rename) and then deletes it.
func (r *remoteFS) archive(ctx context.Context, p, archiveDir string) error {
	k, err := r.key(p)
	if err != nil {
		return err
	}
	dst, err := r.resolver.Resolve(ctx, archiveDir)
	if err != nil {
		return err
	}
	in, err := r.st.Open(ctx, k)
	if err != nil {
		return err
	}
	defer in.Close()
	w, err := dst.Create(ctx, k, storage.IfAbsent)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, in); err != nil {
		w.Abort()
		return err
	}
	if err := w.Commit(); err != nil {
		if errors.Is(err, storage.ErrExist) {
			return fmt.Errorf("the target %s exists", storage.URI(dst, k))
		}
		return err
	}
	return r.st.Delete(ctx, k)
}

// list lists the files matched by a pattern of URIs under r.root: each
// path element may hold *, ? and [..] (and the pattern {a,b}
// alternatives); a matched directory contributes its files and those of
// its key=value partition directories, or (recursive) every file under it,
// as listFiles does locally. Hidden names (see hiddenName) are skipped.
// One List request per directory visited.
func (r *remoteFS) list(ctx context.Context, pattern, nameFilter string, recursive bool) ([]fileInfo, error) {
	seen := map[string]bool{}
	var out []fileInfo
	add := func(key string, e storage.Entry) {
		p := r.uri(key)
		if seen[p] {
			return
		}
		if nameFilter != "" {
			if ok, _ := path.Match(nameFilter, path.Base(key)); !ok {
				return
			}
		}
		seen[p] = true
		out = append(out, fileInfo{path: p, modMs: e.ModTime.UnixMilli(), size: e.Size})
	}
	walkAll := func(dir string) error {
		return storage.Walk(ctx, r.st, dir, func(name string) bool {
			base := path.Base(name)
			return hiddenName(base) || (!recursive && !partitionDir(base))
		},
			func(name string, e storage.Entry) error {
				if !hiddenName(e.Name) {
					add(name, e)
				}
				return nil
			})
	}
	var match func(dir string, elems []string) error
	match = func(dir string, elems []string) error {
		if len(elems) == 0 {
			return walkAll(dir)
		}
		e := elems[0]
		if !hasGlob(e) && len(elems) > 1 {
			return match(path.Join(dir, e), elems[1:])
		}
		ents, err := r.st.List(ctx, dir)
		if err != nil {
			return err
		}
		for _, ent := range ents {
			if ok, _ := path.Match(e, ent.Name); !ok || hiddenName(ent.Name) {
				continue
			}
			name := path.Join(dir, ent.Name)
			switch {
			case len(elems) > 1:
				if ent.IsDir {
					if err := match(name, elems[1:]); err != nil {
						return err
					}
				}
			case ent.IsDir:
				if err := walkAll(name); err != nil {
					return err
				}
			default:
				add(name, ent)
			}
		}
		return nil
	}
	for _, p := range mustExpand(pattern) {
		_, key, ok := splitRemote(p)
		if !ok {
			return nil, fmt.Errorf("file source: pattern %s is not under %s", p, r.root)
		}
		var elems []string
		if key != "" {
			elems = strings.Split(key, "/")
		}
		if err := match("", elems); err != nil {
			return nil, fmt.Errorf("file source: list %s: %w", p, err)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out, nil
}
