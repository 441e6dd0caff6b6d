// Package emulator starts the object-store emulators sluice is tested
// against, on the loopback interface: Azurite (Microsoft's Azure Storage
// emulator, from npm) as a child process, and gofakes3 (an S3 server in
// Go whose in-memory backend honours If-None-Match: * on PutObject
// atomically) in process. Tests (through package storagetest) and `sluice
// torture --store` use them.
//
// Azurite is found through SLUICE_AZURITE_DIR (a directory where `npm
// install azurite` was run, as .ci/run does) or azurite-blob on PATH.
package emulator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/sluice-stream/sluice/internal/storage"
)

// Azurite's well-known development account.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// S3 emulator credentials (gofakes3 accepts any).
const (
	S3AccessKey = "sluice-test-access"
	S3SecretKey = "sluice-test-secret-key-0123456789"
)

// Emulator is a running object-store emulator with one container or
// bucket made for the caller.
type Emulator struct {
	// Kind is storage.KindAzure or storage.KindS3.
	Kind string
	// Conf holds the session settings that reach the emulator (endpoint
	// and credentials, by their Spark/Hadoop names).
	Conf map[string]string
	// Root is the URI of the container or bucket, e.g.
	// "abfss://test@devstoreaccount1.dfs.core.windows.net" or
	// "s3a://test".
	Root string
	// Endpoint is the emulator's HTTP address.
	Endpoint string
	stop     func()
}

// URI returns the URI of path under the emulator's container or bucket.
func (e *Emulator) URI(path string) string {
	return e.Root + "/" + strings.TrimPrefix(path, "/")
}

// Close stops the emulator.
func (e *Emulator) Close() {
	if e.stop != nil {
		e.stop()
		e.stop = nil
	}
}

// Resolver returns a Resolver configured for the emulator (plus extra
// settings).
func (e *Emulator) Resolver(opts ...storage.ResolverOption) (*storage.Resolver, error) {
	// The environment must not point the SDKs elsewhere.
	opts = append([]storage.ResolverOption{storage.WithEnv(func(string) string { return "" })}, opts...)
	return storage.NewResolver(e.Conf, opts...)
}

// AzuriteCommand returns the path of azurite-blob, or an error saying why
// there is none.
func AzuriteCommand() (string, error) {
	if dir := os.Getenv("SLUICE_AZURITE_DIR"); dir != "" {
		p := filepath.Join(dir, "node_modules", ".bin", "azurite-blob")
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("no node_modules/.bin/azurite-blob in SLUICE_AZURITE_DIR=%s", dir)
		}
		return p, nil
	}
	if p, err := exec.LookPath("azurite-blob"); err == nil {
		return p, nil
	}
	return "", errors.New("Azurite not found: set SLUICE_AZURITE_DIR to a directory where `npm install azurite` ran, or put azurite-blob on PATH")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartAzurite starts Azurite's Blob service in memory on a free loopback
// port and creates container (named "test" when empty). log receives its
// output (nil: discarded).
func StartAzurite(ctx context.Context, containerName string, log io.Writer) (*Emulator, error) {
	cmdPath, err := AzuriteCommand()
	if err != nil {
		return nil, err
	}
	if containerName == "" {
		containerName = "test"
	}
	if log == nil {
		log = io.Discard
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		work, err := os.MkdirTemp("", "sluice-azurite-")
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(cmdPath, "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(port),
			"--inMemoryPersistence", "--extentMemoryLimit", "2048", "--skipApiVersionCheck", "--disableTelemetry", "--loose", "--silent")
		cmd.Dir = work
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		cmd.Stderr = log
		if err := cmd.Start(); err != nil {
			os.RemoveAll(work)
			return nil, fmt.Errorf("start Azurite: %w", err)
		}
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cmd.Process.Kill()
				cmd.Wait()
				os.RemoveAll(work)
			})
		}
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			said := false
			for sc.Scan() {
				fmt.Fprintln(log, sc.Text())
				if !said && strings.Contains(sc.Text(), "successfully listen") {
					said = true
					ready <- true
				}
			}
			if !said {
				ready <- false
			}
		}()
		select {
		case ok := <-ready:
			if !ok {
				stop()
				lastErr = errors.New("Azurite exited before listening (port taken?)")
				continue
			}
		case <-time.After(60 * time.Second):
			stop()
			return nil, errors.New("Azurite did not start within 60 s")
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		}
		endpoint := fmt.Sprintf("http://127.0.0.1:%d/%s", port, AzuriteAccount)
		e := &Emulator{
			Kind:     storage.KindAzure,
			Endpoint: endpoint,
			Root:     fmt.Sprintf("abfss://%s@%s.dfs.core.windows.net", containerName, AzuriteAccount),
			Conf: map[string]string{
				storage.OptAzureEndpoint: fmt.Sprintf("http://127.0.0.1:%d/{account}", port),
				"fs.azure.account.key." + AzuriteAccount + ".dfs.core.windows.net": AzuriteKey,
			},
			stop: stop,
		}
		if err := createContainer(ctx, endpoint, containerName); err != nil {
			stop()
			return nil, fmt.Errorf("Azurite: create container %s: %w", containerName, err)
		}
		return e, nil
	}
	return nil, lastErr
}

// StartS3 starts an in-memory S3 server (gofakes3) on a free loopback
// port and creates bucket (named "test" when empty).
func StartS3(ctx context.Context, bucket string) (*Emulator, error) {
	if bucket == "" {
		bucket = "test"
	}
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		return nil, err
	}
	faker := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog()))
	srv := httptest.NewUnstartedServer(faker.Server())
	srv.Config.ErrorLog = nil
	srv.Start()
	return &Emulator{
		Kind:     storage.KindS3,
		Endpoint: srv.URL,
		Root:     "s3a://" + bucket,
		Conf: map[string]string{
			"fs.s3a.endpoint":          srv.URL,
			"fs.s3a.path.style.access": "true",
			"fs.s3a.access.key":        S3AccessKey,
			"fs.s3a.secret.key":        S3SecretKey,
			"fs.s3a.endpoint.region":   "us-east-1",
		},
		stop: srv.Close,
	}, nil
}

// createContainer creates a container in Azurite with the well-known key
// (the only management call sluice's tests need).
func createContainer(ctx context.Context, endpoint, name string) error {
	r, err := storage.NewResolver(map[string]string{
		storage.OptAzureEndpoint: endpoint,
		"fs.azure.account.key." + AzuriteAccount + ".blob.core.windows.net": AzuriteKey,
	}, storage.WithEnv(func(string) string { return "" }))
	if err != nil {
		return err
	}
	return storage.CreateContainer(ctx, r, fmt.Sprintf("wasbs://%s@%s.blob.core.windows.net", name, AzuriteAccount))
}

// RequestCounter counts the HTTP requests an object store sends, by
// operation ("PUT blob", "PUT block", "GET list", …), for the request
// figures in docs/storage.md.
type RequestCounter struct {
	inner HTTPClient
	mu    sync.Mutex
	n     map[string]int
}

// HTTPClient is the client interface both SDKs use.
type HTTPClient interface {
	Do(*http.Request) (*http.Response, error)
}

// NewRequestCounter counts the requests sent through http.DefaultClient.
func NewRequestCounter() *RequestCounter {
	return &RequestCounter{inner: &http.Client{}, n: map[string]int{}}
}

// Do implements the clients' interface.
func (c *RequestCounter) Do(req *http.Request) (*http.Response, error) {
	op := Operation(req)
	c.mu.Lock()
	c.n[op]++
	c.mu.Unlock()
	return c.inner.Do(req)
}

// Counts returns the requests so far by operation.
func (c *RequestCounter) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// Total returns the number of requests so far.
func (c *RequestCounter) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := 0
	for _, v := range c.n {
		t += v
	}
	return t
}

// Reset forgets the counts.
func (c *RequestCounter) Reset() {
	c.mu.Lock()
	c.n = map[string]int{}
	c.mu.Unlock()
}

// Operation names the object-store operation of a request: the method
// and, where the query string tells, the kind ("PUT block", "PUT
// blocklist", "GET list", "POST uploads", "PUT part", "POST delete").
func Operation(req *http.Request) string {
	q := req.URL.Query()
	m := req.Method
	switch {
	case q.Get("comp") == "list" || q.Get("list-type") != "" || (m == http.MethodGet && q.Has("delimiter")):
		return m + " list"
	case q.Get("comp") != "":
		return m + " " + q.Get("comp")
	case q.Has("uploads"):
		return m + " create-multipart"
	case q.Has("partNumber"):
		return m + " part"
	case q.Has("uploadId"):
		if m == http.MethodPost {
			return m + " complete-multipart"
		}
		return m + " abort-multipart"
	case q.Has("delete"):
		return m + " delete-objects"
	}
	return m + " object"
}
