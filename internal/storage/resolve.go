package storage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/redact"
)

// Option names of sluice's own storage settings (the Spark/Hadoop names
// it reads are listed in docs/storage.md).
const (
	// OptAzureEndpoint overrides the Blob service endpoint of every Azure
	// account, e.g. "http://127.0.0.1:10000/{account}" for Azurite
	// ({account} is replaced by the account name).
	OptAzureEndpoint = "sluice.storage.azure.endpoint"
	// OptAzureAccount is the account of az://container/path URIs.
	OptAzureAccount = "sluice.storage.azure.account"
	// OptBlockSize is the size of one uploaded block or part.
	OptBlockSize = "sluice.storage.blockSize"
	// OptUploadConcurrency is how many blocks of one file upload at once.
	OptUploadConcurrency = "sluice.storage.uploadConcurrency"
	// OptUploadMemory bounds a store's upload buffers when no memory
	// budget gives it a share.
	OptUploadMemory = "sluice.storage.uploadMemory"
)

// sparkHadoopPrefix is how Spark passes Hadoop settings through its own
// configuration.
const sparkHadoopPrefix = "spark.hadoop."

// HTTPDoer sends HTTP requests: an *http.Client, or a wrapper that counts
// or fails requests in tests.
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// Resolver turns paths and URIs into Stores, with the storage settings of
// a session: Spark/Hadoop's names for credentials and endpoints
// (fs.azure.account.key.<account>.dfs.core.windows.net, fs.azure.sas.…,
// fs.s3a.access.key, fs.s3a.secret.key, fs.s3a.session.token,
// fs.s3a.endpoint, fs.s3a.path.style.access, fs.s3a.endpoint.region and
// per-bucket fs.s3a.bucket.<bucket>.…, each also with a "spark.hadoop."
// prefix), sluice's own (sluice.storage.*), and otherwise the SDKs' default
// credential chains (environment, workload identity or managed identity,
// AZURE_STORAGE_CONNECTION_STRING, AWS_* and shared config files, instance
// profiles). Secret values never appear in its errors. It is safe for
// concurrent use; clients are made once per container or bucket.
type Resolver struct {
	conf        map[string]string
	env         func(string) string
	http        HTTPDoer
	scrub       redact.Scrubber
	blockSize   int
	concurrency int
	memory      int64

	mu       sync.Mutex
	backends map[string]objectBackend
}

// ResolverOption configures a Resolver.
type ResolverOption func(*Resolver)

// WithHTTPClient sends the object stores' requests through c.
func WithHTTPClient(c HTTPDoer) ResolverOption { return func(r *Resolver) { r.http = c } }

// WithEnv reads environment variables through getenv instead of os.Getenv.
func WithEnv(getenv func(string) string) ResolverOption {
	return func(r *Resolver) { r.env = getenv }
}

// NewResolver returns a Resolver for the given settings (a session's
// configuration; keys not about storage are ignored). Malformed storage
// settings are errors naming the option.
func NewResolver(conf map[string]string, opts ...ResolverOption) (*Resolver, error) {
	r := &Resolver{conf: map[string]string{}, env: os.Getenv, backends: map[string]objectBackend{},
		blockSize: DefaultBlockSize, concurrency: DefaultUploadConcurrency, memory: DefaultUploadMemory}
	for _, o := range opts {
		o(r)
	}
	var secrets []string
	for k, v := range conf {
		k = strings.TrimPrefix(k, sparkHadoopPrefix)
		if !strings.HasPrefix(k, "fs.") && !strings.HasPrefix(k, "sluice.storage.") {
			continue
		}
		r.conf[k] = strings.TrimSpace(v)
		if redact.IsSecretOption(k) {
			secrets = append(secrets, strings.TrimSpace(v))
		}
	}
	for _, name := range []string{"AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_CLIENT_SECRET"} {
		secrets = append(secrets, r.env(name))
	}
	if cs := r.env("AZURE_STORAGE_CONNECTION_STRING"); cs != "" {
		p := parseConnectionString(cs)
		secrets = append(secrets, cs, p.key, p.sas)
	}
	r.scrub = redact.NewScrubber(secrets...)
	var err error
	if r.blockSize, err = r.sizeOption(DefaultBlockSize, 1<<20, 4000<<20, OptBlockSize, "fs.s3a.multipart.size", "fs.azure.write.request.size"); err != nil {
		return nil, err
	}
	c, err := r.sizeOption(DefaultUploadConcurrency, 1, 64, OptUploadConcurrency, "fs.s3a.fast.upload.active.blocks", "fs.azure.write.max.concurrent.requests")
	if err != nil {
		return nil, err
	}
	r.concurrency = c
	m, err := r.sizeOption(DefaultUploadMemory, 1<<20, 1<<40, OptUploadMemory)
	if err != nil {
		return nil, err
	}
	r.memory = int64(m)
	for k, v := range r.conf {
		if strings.HasSuffix(k, ".path.style.access") || strings.HasSuffix(k, ".connection.ssl.enabled") {
			if _, err := strconv.ParseBool(v); err != nil {
				return nil, &options.Error{Option: k, Value: v, Allowed: "allowed: true, false"}
			}
		}
		if k == OptAzureEndpoint || strings.HasSuffix(k, "s3a.endpoint") && strings.Contains(v, "://") {
			if u, err := url.Parse(strings.ReplaceAll(v, "{account}", "a")); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, &options.Error{Option: k, Value: v, Allowed: "allowed: an http:// or https:// URL"}
			}
		}
	}
	return r, nil
}

// sizeOption reads the first of names that is set as a byte size or count
// within [lo, hi].
func (r *Resolver) sizeOption(def, lo, hi int, names ...string) (int, error) {
	for _, n := range names {
		v, ok := r.conf[n]
		if !ok {
			continue
		}
		b, err := options.ParseBytes(v)
		if err != nil || b < int64(lo) || b > int64(hi) {
			return 0, &options.Error{Option: n, Value: v, Allowed: fmt.Sprintf("allowed: a number or size from %d to %d", lo, hi)}
		}
		return int(b), nil
	}
	return def, nil
}

// Scrub removes the configured secrets (and recognisable ones) from err's
// message.
func (r *Resolver) Scrub(err error) error { return r.scrub.Err(err) }

// ScrubText removes the configured secrets from t.
func (r *Resolver) ScrubText(t string) string { return r.scrub.Text(t) }

// Resolve returns the Store rooted at the path or URI s (see
// ParseLocation). It does no I/O for object stores: wrong credentials or a
// missing container show on the first request.
func (r *Resolver) Resolve(ctx context.Context, s string) (Store, error) {
	l, err := ParseLocation(s)
	if err != nil {
		return nil, err
	}
	return r.ResolveLocation(ctx, l)
}

// ResolveLocation is Resolve for a parsed location.
func (r *Resolver) ResolveLocation(ctx context.Context, l Location) (Store, error) {
	if l.IsLocal() {
		return NewLocal(l.Path)
	}
	b, err := r.backend(ctx, l)
	if err != nil {
		return nil, r.scrub.Err(fmt.Errorf("storage %s: %w", l, err))
	}
	return &objectStore{b: b, prefix: l.Key, scrub: r.scrub, pool: newBufferPool(r.memory),
		blockSize: r.blockSize, concurrency: r.concurrency}, nil
}

func (r *Resolver) backend(ctx context.Context, l Location) (objectBackend, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := l.Kind + "\x00" + l.Account + "\x00" + l.Host + "\x00" + l.Container
	if b, ok := r.backends[id]; ok {
		return b, nil
	}
	var b objectBackend
	var err error
	switch l.Kind {
	case KindAzure:
		b, err = r.azure(l)
	case KindS3:
		b, err = r.s3(ctx, l)
	default:
		err = fmt.Errorf("unknown storage kind %q", l.Kind)
	}
	if err != nil {
		return nil, err
	}
	r.backends[id] = b
	return b, nil
}

// connectionString is the part of an Azure Storage connection string
// sluice uses.
type connectionString struct {
	account, key, sas, endpoint string
}

func parseConnectionString(s string) connectionString {
	var c connectionString
	var protocol, suffix string
	dev := false
	for _, part := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "accountname":
			c.account = strings.ToLower(strings.TrimSpace(v))
		case "accountkey":
			c.key = strings.TrimSpace(v)
		case "sharedaccesssignature":
			c.sas = strings.TrimPrefix(strings.TrimSpace(v), "?")
		case "blobendpoint":
			c.endpoint = strings.TrimSuffix(strings.TrimSpace(v), "/")
		case "defaultendpointsprotocol":
			protocol = strings.TrimSpace(v)
		case "endpointsuffix":
			suffix = strings.TrimSpace(v)
		case "usedevelopmentstorage":
			dev = strings.EqualFold(strings.TrimSpace(v), "true")
		}
	}
	if dev { // Azurite's well-known account
		c.account = "devstoreaccount1"
		c.key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
		c.endpoint = "http://127.0.0.1:10000/devstoreaccount1"
	}
	if c.endpoint == "" && c.account != "" {
		if protocol == "" {
			protocol = "https"
		}
		if suffix == "" {
			suffix = "core.windows.net"
		}
		c.endpoint = protocol + "://" + c.account + ".blob." + suffix
	}
	return c
}

// azureSetting returns the first configured value among the names.
func (r *Resolver) first(names ...string) (string, string, bool) {
	for _, n := range names {
		if v, ok := r.conf[n]; ok && v != "" {
			return n, v, true
		}
	}
	return "", "", false
}

// withPrefix returns the value of the one key starting with prefix (for
// settings whose names end in a host name).
func (r *Resolver) withPrefix(prefix string) (string, bool) {
	keys := make([]string, 0, 1)
	for k, v := range r.conf {
		if v != "" && strings.HasPrefix(strings.ToLower(k), strings.ToLower(prefix)) {
			keys = append(keys, k) // an empty value (an unset ${VAR:-}) is no setting
		}
	}
	if len(keys) == 0 {
		return "", false
	}
	slices.Sort(keys)
	return r.conf[keys[0]], true
}

func (r *Resolver) azure(l Location) (objectBackend, error) {
	cs := parseConnectionString(r.env("AZURE_STORAGE_CONNECTION_STRING"))
	account := l.Account
	if account == "" {
		_, account, _ = r.first(OptAzureAccount)
		for _, e := range []string{"AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_NAME"} {
			if account == "" {
				account = r.env(e)
			}
		}
		if account == "" {
			account = cs.account
		}
		account = strings.ToLower(account)
		if account == "" {
			return nil, fmt.Errorf("%s names no storage account: set %s (or AZURE_STORAGE_ACCOUNT), or write az://container@account.dfs.core.windows.net/path", l, OptAzureAccount)
		}
	}
	useCS := cs.account != "" && cs.account == account
	// Endpoint: the override, the connection string's, or the account's
	// Blob endpoint in the cloud the URI names.
	endpoint := ""
	if _, v, ok := r.first(OptAzureEndpoint); ok {
		endpoint = strings.TrimSuffix(strings.ReplaceAll(v, "{account}", account), "/")
	} else if useCS && cs.endpoint != "" {
		endpoint = cs.endpoint
	} else {
		suffix := "core.windows.net"
		if _, rest, ok := strings.Cut(l.Host, "."); ok {
			if _, s, ok := strings.Cut(rest, "."); ok && (strings.HasPrefix(rest, "dfs.") || strings.HasPrefix(rest, "blob.")) {
				suffix = s
			}
		}
		endpoint = "https://" + account + ".blob." + suffix
	}
	containerURL := endpoint + "/" + url.PathEscape(l.Container)
	copts := &container.ClientOptions{}
	if r.http != nil {
		copts.Transport = r.http
	}
	uriBase := l.root()
	// Credentials: an account key, then a SAS token, from the options;
	// then the connection string and AZURE_STORAGE_KEY; then the default
	// chain (service principal, workload identity, managed identity, CLI).
	key, hasKey := r.withPrefix("fs.azure.account.key." + account + ".")
	sas, hasSAS := r.withPrefix("fs.azure.sas.fixed.token." + account + ".")
	if !hasSAS {
		sas, hasSAS = r.withPrefix("fs.azure.sas." + l.Container + "." + account + ".")
	}
	if !hasKey && !hasSAS {
		switch {
		case useCS && cs.key != "":
			key, hasKey = cs.key, true
		case useCS && cs.sas != "":
			sas, hasSAS = cs.sas, true
		case r.env("AZURE_STORAGE_KEY") != "" && strings.EqualFold(r.env("AZURE_STORAGE_ACCOUNT"), account):
			key, hasKey = r.env("AZURE_STORAGE_KEY"), true
		}
	}
	var cc *container.Client
	var err error
	switch {
	case hasKey:
		cred, cerr := container.NewSharedKeyCredential(account, key)
		if cerr != nil {
			return nil, fmt.Errorf("the account key of %s is not valid base64", account)
		}
		cc, err = container.NewClientWithSharedKeyCredential(containerURL, cred, copts)
	case hasSAS:
		cc, err = container.NewClientWithNoCredential(containerURL+"?"+strings.TrimPrefix(sas, "?"), copts)
	default:
		var cred azcore.TokenCredential
		cred, err = azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("no credentials for account %s: set fs.azure.account.key.%s.dfs.core.windows.net or a SAS token, or AZURE_STORAGE_CONNECTION_STRING, or sign in for the default Azure credential chain: %w", account, account, err)
		}
		if strings.HasPrefix(endpoint, "http://") {
			copts.InsecureAllowCredentialWithHTTP = true
		}
		cc, err = container.NewClient(containerURL, cred, copts)
	}
	if err != nil {
		return nil, err
	}
	return &azureBackend{cc: cc, uriBase: uriBase}, nil
}

// s3Setting returns the per-bucket setting fs.s3a.bucket.<bucket>.<name>
// or the global fs.s3a.<name>.
func (r *Resolver) s3Setting(bucket, name string) (string, bool) {
	_, v, ok := r.first("fs.s3a.bucket."+bucket+"."+name, "fs.s3a."+name)
	return v, ok
}

func (r *Resolver) s3(ctx context.Context, l Location) (objectBackend, error) {
	bucket := l.Container
	var lopts []func(*awsconfig.LoadOptions) error
	if region, ok := r.s3Setting(bucket, "endpoint.region"); ok {
		lopts = append(lopts, awsconfig.WithRegion(region))
	}
	ak, hasAK := r.s3Setting(bucket, "access.key")
	sk, hasSK := r.s3Setting(bucket, "secret.key")
	if hasAK != hasSK {
		return nil, fmt.Errorf("fs.s3a.access.key and fs.s3a.secret.key must be set together (bucket %s)", bucket)
	}
	if hasAK {
		tok, _ := r.s3Setting(bucket, "session.token")
		lopts = append(lopts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ak, sk, tok)))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, lopts...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	endpoint, hasEndpoint := r.s3Setting(bucket, "endpoint")
	if hasEndpoint && !strings.Contains(endpoint, "://") {
		scheme := "https"
		if v, ok := r.s3Setting(bucket, "connection.ssl.enabled"); ok && v == "false" {
			scheme = "http"
		}
		endpoint = scheme + "://" + endpoint
	}
	pathStyle := false
	if v, ok := r.s3Setting(bucket, "path.style.access"); ok {
		pathStyle, _ = strconv.ParseBool(v)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if hasEndpoint {
			o.BaseEndpoint = aws.String(endpoint)
			// S3-compatible stores do not all accept the newer default
			// checksums; send them only where S3 requires them.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
		o.UsePathStyle = pathStyle
		if r.http != nil {
			o.HTTPClient = r.http
		}
	})
	return &s3Backend{c: client, bucket: bucket, uriBase: l.root()}, nil
}

// CreateContainer creates the Azure container or S3 bucket that uri names
// (an existing one is fine). sluice itself never creates one; tests and
// the emulators of `sluice torture` do.
func CreateContainer(ctx context.Context, r *Resolver, uri string) error {
	l, err := ParseLocation(uri)
	if err != nil {
		return err
	}
	b, err := r.backend(ctx, l)
	if err != nil {
		return err
	}
	switch b := b.(type) {
	case *azureBackend:
		_, err = b.cc.Create(ctx, nil)
		if bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
			err = nil
		}
	case *s3Backend:
		_, err = b.c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &b.bucket})
		var owned *s3types.BucketAlreadyOwnedByYou
		var exists *s3types.BucketAlreadyExists
		if errors.As(err, &owned) || errors.As(err, &exists) {
			err = nil
		}
	}
	return r.scrub.Err(err)
}
