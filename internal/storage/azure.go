package storage

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// azureBackend is one container of an Azure Storage account, through the
// Blob service endpoint (which serves ADLS Gen2 accounts too: abfss://
// paths are read and written as blobs).
type azureBackend struct {
	cc      *container.Client
	uriBase string // "abfss://container@account.dfs.core.windows.net"
}

var ifNoneMatchAny = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to.Ptr(azcore.ETagAny)}}

// azErr maps the service's error codes onto ErrExist and ErrNotExist.
func azErr(err error) error {
	switch {
	case err == nil:
		return nil
	case bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet):
		return fmt.Errorf("%w (%v)", ErrExist, shortAzure(err))
	case bloberror.HasCode(err, bloberror.ContainerNotFound):
		return fmt.Errorf("the container does not exist (create it first): %w", err)
	case bloberror.HasCode(err, bloberror.BlobNotFound):
		return fmt.Errorf("%w (%v)", ErrNotExist, shortAzure(err))
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w (%v)", ErrNotExist, shortAzure(err))
	}
	return err
}

// shortAzure is the error code of a service response (its full text spans
// many lines).
func shortAzure(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return fmt.Sprintf("%d %s", re.StatusCode, re.ErrorCode)
	}
	return err.Error()
}

func (a *azureBackend) uri(key string) string {
	if key == "" {
		return a.uriBase
	}
	return a.uriBase + "/" + key
}

func (a *azureBackend) minPart() int { return 0 }

func (a *azureBackend) put(ctx context.Context, key string, data []byte, ifAbsent bool) error {
	opts := &blockblob.UploadOptions{}
	if ifAbsent {
		opts.AccessConditions = ifNoneMatchAny
	}
	_, err := a.cc.NewBlockBlobClient(key).Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), opts)
	return azErr(err)
}

func (a *azureBackend) get(ctx context.Context, key string) (io.ReadCloser, error) {
	resp, err := a.cc.NewBlobClient(key).DownloadStream(ctx, nil)
	if err != nil {
		return nil, azErr(err)
	}
	return resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 3}), nil
}

func (a *azureBackend) list(ctx context.Context, prefix string) ([]Entry, []string, error) {
	var files []Entry
	var dirs []string
	opts := &container.ListBlobsHierarchyOptions{Include: container.ListBlobsInclude{Metadata: true}}
	if prefix != "" {
		opts.Prefix = &prefix
	}
	pager := a.cc.NewListBlobsHierarchyPager("/", opts)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, nil, azErr(err)
		}
		for _, p := range page.Segment.BlobPrefixes {
			if p.Name != nil {
				dirs = append(dirs, strings.TrimSuffix(*p.Name, "/"))
			}
		}
		for _, b := range page.Segment.BlobItems {
			if b.Name == nil {
				continue
			}
			// ADLS Gen2 (hierarchical namespace) shows directories as
			// empty blobs marked hdi_isfolder.
			if v, ok := metadataValue(b.Metadata, "hdi_isfolder"); ok && strings.EqualFold(v, "true") {
				dirs = append(dirs, *b.Name)
				continue
			}
			e := Entry{Name: *b.Name}
			if pr := b.Properties; pr != nil {
				if pr.ContentLength != nil {
					e.Size = *pr.ContentLength
				}
				if pr.LastModified != nil {
					e.ModTime = *pr.LastModified
				}
			}
			files = append(files, e)
		}
	}
	return files, dirs, nil
}

func metadataValue(m map[string]*string, key string) (string, bool) {
	for k, v := range m {
		if strings.EqualFold(k, key) && v != nil {
			return *v, true
		}
	}
	return "", false
}

func (a *azureBackend) delete(ctx context.Context, keys []string) error {
	// One request per blob, a few at a time.
	sem := make(chan struct{}, 8)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, err := a.cc.NewBlobClient(k).Delete(ctx, nil)
			if err = azErr(err); err != nil && !errors.Is(err, ErrNotExist) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (a *azureBackend) newUpload(_ context.Context, key string) (multipartUpload, error) {
	return &azureUpload{a: a, key: key, bb: a.cc.NewBlockBlobClient(key), id: NewUUID()}, nil
}

// azureUpload stages blocks and commits their list. Block ids have one
// length for every writer ("<upload uuid>-<n:08d>", 45 bytes before
// base64), as the service requires of the blocks of one blob; staged
// blocks stay invisible until committed and the service discards the
// uncommitted ones after a week.
type azureUpload struct {
	a   *azureBackend
	key string
	bb  *blockblob.Client
	id  string
}

func (u *azureUpload) blockID(n int) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%s-%08d", u.id, n)))
}

func (u *azureUpload) part(ctx context.Context, n int, data []byte) error {
	_, err := u.bb.StageBlock(ctx, u.blockID(n), streaming.NopCloser(bytes.NewReader(data)), nil)
	return azErr(err)
}

func (u *azureUpload) complete(ctx context.Context, parts int, ifAbsent bool) error {
	ids := make([]string, parts)
	for i := range ids {
		ids[i] = u.blockID(i)
	}
	opts := &blockblob.CommitBlockListOptions{}
	if ifAbsent {
		opts.AccessConditions = ifNoneMatchAny
	}
	_, err := u.bb.CommitBlockList(ctx, ids, opts)
	if ifAbsent && bloberror.HasCode(err, bloberror.InvalidBlockList) {
		// Another writer's commit of the same name discarded our staged
		// blocks: the name is taken if the blob exists now.
		if _, perr := u.bb.GetProperties(ctx, nil); perr == nil {
			return fmt.Errorf("%w (%v)", ErrExist, shortAzure(err))
		}
	}
	return azErr(err)
}

func (u *azureUpload) abort(context.Context) {}
