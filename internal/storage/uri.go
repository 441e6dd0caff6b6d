package storage

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
)

// Kinds of storage a Location names.
const (
	KindLocal = "local"
	KindAzure = "azure"
	KindS3    = "s3"
)

// SupportedSchemes lists the URI schemes Resolver accepts, for messages.
const SupportedSchemes = "abfss://container@account.dfs.core.windows.net/path, abfs://…, wasbs://container@account.blob.core.windows.net/path, wasb://…, az://container/path, s3a://bucket/path, s3://bucket/path, file:///path and plain paths"

// Location is a parsed path or URI: a local directory, an Azure
// container (with the account and the host that named it) or an S3
// bucket, and a key prefix inside it.
type Location struct {
	// Kind is KindLocal, KindAzure or KindS3.
	Kind string
	// Scheme is the URI scheme as written, lower-cased ("" for a plain
	// path).
	Scheme string
	// Path is the absolute local path (KindLocal).
	Path string
	// Account is the Azure storage account ("" for az://container/path,
	// which takes it from the configuration).
	Account string
	// Host is the URI's host for Azure ("account.dfs.core.windows.net").
	Host string
	// Container is the Azure container or the S3 bucket.
	Container string
	// Key is the key prefix inside the container or bucket, without a
	// leading or trailing "/" ("" for the root).
	Key string
}

var schemeRE = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*):(/.*)$`)

// ParseLocation parses a path or URI as Spark and Delta spell them:
// abfss://container@account.dfs.core.windows.net/path (and abfs://),
// wasbs://container@account.blob.core.windows.net/path (and wasb://),
// az://container/path, s3a://bucket/path, s3://bucket/path, file:///path
// and plain paths (made absolute). Any other scheme is an error naming the
// supported ones. It does no I/O.
func ParseLocation(s string) (Location, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Location{}, fmt.Errorf("empty path")
	}
	m := schemeRE.FindStringSubmatch(s)
	if m == nil || len(m[1]) == 1 { // no scheme (or a Windows drive letter)
		abs, err := filepath.Abs(s)
		if err != nil {
			return Location{}, fmt.Errorf("path %q: %w", s, err)
		}
		return Location{Kind: KindLocal, Path: abs}, nil
	}
	scheme := strings.ToLower(m[1])
	if scheme == "file" {
		u, err := url.Parse(s)
		if err != nil || (u.Host != "" && u.Host != "localhost") || u.RawQuery != "" || u.Fragment != "" {
			return Location{}, fmt.Errorf("path %q: want file:///absolute/path", s)
		}
		return Location{Kind: KindLocal, Scheme: scheme, Path: filepath.Clean(filepath.FromSlash(u.Path))}, nil
	}
	if !strings.HasPrefix(m[2], "//") {
		return Location{}, fmt.Errorf("path %q: want %s://…", s, scheme)
	}
	u, err := url.Parse(s)
	if err != nil {
		return Location{}, fmt.Errorf("path %q is not a valid URI (supported: %s)", s, SupportedSchemes)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		// A SAS token pasted into the path would end up in logs and in the
		// file sink's metadata log.
		return Location{}, fmt.Errorf("path %s://%s…: a storage URI takes no query string (give SAS tokens and keys as options: see docs/storage.md)", scheme, u.Host)
	}
	l := Location{Scheme: scheme, Key: strings.Trim(u.Path, "/")}
	if strings.Contains(l.Key, "//") || hasDotElement(l.Key) {
		return Location{}, fmt.Errorf("path %q: empty, . or .. path elements are not allowed in a storage URI", s)
	}
	switch scheme {
	case "abfss", "abfs", "wasbs", "wasb":
		l.Kind = KindAzure
		if u.User == nil || u.User.Username() == "" || u.Hostname() == "" {
			return Location{}, fmt.Errorf("path %q: want %s://container@account.%s.core.windows.net/path", s, scheme, map[bool]string{true: "dfs", false: "blob"}[strings.HasPrefix(scheme, "abfs")])
		}
		if _, hasPw := u.User.Password(); hasPw {
			return Location{}, fmt.Errorf("path %s://…@%s: credentials do not belong in the URI (see docs/storage.md)", scheme, u.Host)
		}
		l.Container, l.Host = u.User.Username(), strings.ToLower(u.Host)
		l.Account, _, _ = strings.Cut(u.Hostname(), ".")
		l.Account = strings.ToLower(l.Account)
	case "az":
		l.Kind = KindAzure
		switch {
		case u.User != nil && u.Hostname() != "": // az://container@account.dfs.core.windows.net/path
			l.Container, l.Host = u.User.Username(), strings.ToLower(u.Host)
			l.Account, _, _ = strings.Cut(strings.ToLower(u.Hostname()), ".")
		case u.Host != "":
			l.Container = u.Host
		default:
			return Location{}, fmt.Errorf("path %q: want az://container/path", s)
		}
	case "s3a", "s3":
		l.Kind = KindS3
		if u.User != nil {
			return Location{}, fmt.Errorf("path %s://…: credentials do not belong in the URI (see docs/storage.md)", scheme)
		}
		if u.Host == "" {
			return Location{}, fmt.Errorf("path %q: want %s://bucket/path", s, scheme)
		}
		l.Container = u.Host
	default:
		return Location{}, fmt.Errorf("unsupported storage scheme %q in path %q (supported: %s)", scheme, s, SupportedSchemes)
	}
	return l, nil
}

func hasDotElement(key string) bool {
	for _, e := range strings.Split(key, "/") {
		if e == "." || e == ".." {
			return true
		}
	}
	return false
}

// IsLocal reports whether l is on the local file system.
func (l Location) IsLocal() bool { return l.Kind == KindLocal }

// root is the URI of the container or bucket.
func (l Location) root() string {
	switch l.Kind {
	case KindAzure:
		if l.Host != "" {
			return l.Scheme + "://" + l.Container + "@" + l.Host
		}
		return l.Scheme + "://" + l.Container
	case KindS3:
		return l.Scheme + "://" + l.Container
	}
	return ""
}

// String returns the location as a URI (a local path as written by
// filepath).
func (l Location) String() string {
	if l.Kind == KindLocal {
		return l.Path
	}
	if l.Key == "" {
		return l.root()
	}
	return l.root() + "/" + l.Key
}

// Child returns the location of name (slash-separated) under l.
func (l Location) Child(name string) Location {
	name = strings.Trim(name, "/")
	if name == "" {
		return l
	}
	if l.Kind == KindLocal {
		l.Path = filepath.Join(l.Path, filepath.FromSlash(name))
		return l
	}
	if l.Key == "" {
		l.Key = name
	} else {
		l.Key += "/" + name
	}
	return l
}

// Rel returns the name of target relative to l (slash-separated) when
// target is under l; ok is false otherwise.
func (l Location) Rel(target Location) (string, bool) {
	if l.Kind != target.Kind {
		return "", false
	}
	if l.Kind == KindLocal {
		rel, err := filepath.Rel(l.Path, target.Path)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "", false
		}
		return filepath.ToSlash(rel), true
	}
	if l.Container != target.Container || l.Account != target.Account {
		return "", false
	}
	if l.Key == "" {
		return target.Key, target.Key != ""
	}
	rest, ok := strings.CutPrefix(target.Key, l.Key+"/")
	return rest, ok && rest != ""
}
