package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// s3MinPart is S3's smallest part size (other than the last part).
const s3MinPart = 5 << 20

// s3Backend is one S3 bucket (or a bucket of an S3-compatible store).
type s3Backend struct {
	c       *s3.Client
	bucket  string
	uriBase string // "s3a://bucket"
}

// s3Err maps S3's error codes onto ErrExist and ErrNotExist.
func s3Err(err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "PreconditionFailed":
			return fmt.Errorf("%w (%s)", ErrExist, ae.ErrorCode())
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("%w (%s)", ErrNotExist, ae.ErrorCode())
		case "NoSuchBucket":
			return fmt.Errorf("the bucket does not exist (create it first): %w", err)
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusPreconditionFailed:
			return fmt.Errorf("%w (HTTP 412)", ErrExist)
		case http.StatusNotFound:
			return fmt.Errorf("%w (HTTP 404)", ErrNotExist)
		}
	}
	return err
}

// isConditionalConflict reports S3's 409 ConditionalRequestConflict: a
// conditional write raced another one still in flight; retrying gets the
// final answer.
func isConditionalConflict(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "ConditionalRequestConflict" {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusConflict
}

func (b *s3Backend) uri(key string) string {
	if key == "" {
		return b.uriBase
	}
	return b.uriBase + "/" + key
}

func (b *s3Backend) minPart() int { return s3MinPart }

func (b *s3Backend) put(ctx context.Context, key string, data []byte, ifAbsent bool) error {
	in := &s3.PutObjectInput{Bucket: &b.bucket, Key: &key, Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))}
	if ifAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		in.Body = bytes.NewReader(data)
		_, err = b.c.PutObject(ctx, in)
		if !ifAbsent || !isConditionalConflict(err) {
			break
		}
		select {
		case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s3Err(err)
}

func (b *s3Backend) get(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := b.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		return nil, s3Err(err)
	}
	return out.Body, nil
}

func (b *s3Backend) list(ctx context.Context, prefix string) ([]Entry, []string, error) {
	var files []Entry
	var dirs []string
	in := &s3.ListObjectsV2Input{Bucket: &b.bucket, Delimiter: aws.String("/")}
	if prefix != "" {
		in.Prefix = &prefix
	}
	p := s3.NewListObjectsV2Paginator(b.c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, s3Err(err)
		}
		for _, cp := range page.CommonPrefixes {
			if cp.Prefix != nil {
				dirs = append(dirs, strings.TrimSuffix(*cp.Prefix, "/"))
			}
		}
		for _, o := range page.Contents {
			if o.Key == nil {
				continue
			}
			e := Entry{Name: *o.Key}
			if o.Size != nil {
				e.Size = *o.Size
			}
			if o.LastModified != nil {
				e.ModTime = *o.LastModified
			}
			files = append(files, e)
		}
	}
	return files, dirs, nil
}

func (b *s3Backend) delete(ctx context.Context, keys []string) error {
	var errs []error
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		objs := make([]types.ObjectIdentifier, n)
		for i, k := range keys[:n] {
			objs[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := b.c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &b.bucket, Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)}})
		if err != nil {
			return s3Err(err)
		}
		for _, e := range out.Errors {
			if aws.ToString(e.Code) == "NoSuchKey" {
				continue
			}
			errs = append(errs, fmt.Errorf("%s: %s %s", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message)))
		}
		keys = keys[n:]
	}
	return errors.Join(errs...)
}

func (b *s3Backend) newUpload(ctx context.Context, key string) (multipartUpload, error) {
	out, err := b.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		return nil, s3Err(err)
	}
	return &s3Upload{b: b, key: key, id: aws.ToString(out.UploadId), etags: map[int]string{}}, nil
}

// s3Upload is a multipart upload; it is invisible until completed, and an
// upload that is never completed or aborted (a killed writer) is left for
// the bucket's lifecycle rule (AbortIncompleteMultipartUpload) to remove.
type s3Upload struct {
	b     *s3Backend
	key   string
	id    string
	mu    sync.Mutex
	etags map[int]string
}

func (u *s3Upload) part(ctx context.Context, n int, data []byte) error {
	out, err := u.b.c.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &u.b.bucket, Key: &u.key, UploadId: &u.id, PartNumber: aws.Int32(int32(n + 1)),
		Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return s3Err(err)
	}
	u.mu.Lock()
	u.etags[n] = aws.ToString(out.ETag)
	u.mu.Unlock()
	return nil
}

func (u *s3Upload) complete(ctx context.Context, parts int, ifAbsent bool) error {
	u.mu.Lock()
	cp := make([]types.CompletedPart, 0, parts)
	for n := 0; n < parts; n++ {
		etag, ok := u.etags[n]
		if !ok {
			u.mu.Unlock()
			return fmt.Errorf("part %d was not uploaded", n)
		}
		cp = append(cp, types.CompletedPart{ETag: aws.String(etag), PartNumber: aws.Int32(int32(n + 1))})
	}
	u.mu.Unlock()
	sort.Slice(cp, func(i, j int) bool { return *cp[i].PartNumber < *cp[j].PartNumber })
	in := &s3.CompleteMultipartUploadInput{Bucket: &u.b.bucket, Key: &u.key, UploadId: &u.id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: cp}}
	if ifAbsent {
		// S3 makes this atomic; some S3-compatible stores ignore the
		// header on this request, so look first too (sluice writes its
		// put-if-absent files — commits, log entries — in one request,
		// where every store honours it).
		in.IfNoneMatch = aws.String("*")
		if _, err := u.b.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &u.b.bucket, Key: &u.key}); err == nil {
			return fmt.Errorf("%w (object exists)", ErrExist)
		} else if !errors.Is(s3Err(err), ErrNotExist) {
			return s3Err(err)
		}
	}
	_, err := u.b.c.CompleteMultipartUpload(ctx, in)
	return s3Err(err)
}

func (u *s3Upload) abort(ctx context.Context) {
	_, _ = u.b.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &u.b.bucket, Key: &u.key, UploadId: &u.id})
}
