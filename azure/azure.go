// Package azure is a target.Target that stores objects as block blobs in one
// container of an Azure Storage account, with the Azure SDK for Go (azblob,
// azidentity). Objects are laid out as Cinder's object-store drivers lay
// them out (target.LayoutObject).
//
// It authenticates every way Azure users do (see Config): a connection
// string, an account key (Shared Key), a SAS token, or Microsoft Entra ID
// tokens (a managed identity, DefaultAzureCredential or any
// azcore.TokenCredential). It talks to Azure itself
// (https://<account>.blob.core.windows.net) and to emulators such as Azurite
// (http://host:port/<account>).
//
// How objects are written:
//
//   - An object of at most Config.SinglePutThreshold bytes goes up in one Put
//     Blob request. With target.PutOptions.ContentMD5 it carries Content-MD5,
//     which the service verifies before it stores anything, and the MD5 the
//     service reports back is compared with it.
//   - A larger object is staged as blocks of Config.BlockSize,
//     Config.Concurrency at a time, each with its own Content-MD5 that the
//     service verifies, and becomes visible only when the block list is
//     committed, last. The MD5 of the whole body is compared with
//     ContentMD5 before the commit, and stored as the blob's Content-MD5.
//     Memory stays bounded: a *bytes.Reader body is sent from its own bytes,
//     any other body through at most Concurrency+1 block buffers.
//   - So an object is visible whole or not at all. Blocks staged by a failed
//     Put stay invisible and the service drops them (after a week, or at
//     the next commit of that name).
//   - PutOptions.IfNotExists sends If-None-Match: *, which the service
//     checks atomically.
//
// The SDK's own retries are off: every operation makes one attempt, and
// retrying is left to target.NewRetry with Config.RetryPolicy, which honours
// the Retry-After of throttled (429) and busy (503) answers. Errors wrap the
// target sentinels: a missing object or container is target.ErrNotFound
// (the container's message says how to create it), refused credentials are
// target.ErrPermission with a message naming the credential to check (never
// its value), and other HTTP failures carry a *target.StatusError.
package azure

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/chunkback/chunkback/target"
)

// Target stores objects as block blobs in one Azure container. It is safe
// for concurrent use.
type Target struct {
	client    *container.Client
	cfg       Config // with defaults
	tier      *blob.AccessTier
	account   string // "" when only the connection string knows it
	container string
	prefix    string // "" or the prefix followed by '/'
	auth      authKind
	credName  string // the token credential, for messages
	bufs      sync.Pool
}

var (
	_ target.Target         = (*Target)(nil)
	_ target.LayoutTarget   = (*Target)(nil)
	_ target.ContentMD5User = (*Target)(nil)
	_ target.Closer         = (*Target)(nil)
)

// New connects to the container cfg names and checks that it exists and
// that the credentials may list it, creating the container first when it
// is missing and cfg.Create is set. The error of refused credentials wraps
// target.ErrPermission; that of a missing container target.ErrNotFound.
func New(ctx context.Context, cfg Config) (*Target, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	tier, _ := parseTier(cfg.AccessTier)
	account, _ := cfg.account()
	t := &Target{cfg: cfg, tier: tier, account: account, container: cfg.Container}
	if cfg.Prefix != "" {
		t.prefix = cfg.Prefix + "/"
	}
	bs := cfg.BlockSize
	t.bufs.New = func() any { b := make([]byte, bs); return &b }
	if err := t.connect(); err != nil {
		return nil, err
	}
	if err := t.checkContainer(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// connect makes the SDK client for the way cfg authenticates.
func (t *Target) connect() error {
	cfg := t.cfg
	opts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		// One attempt per operation: target.NewRetry retries.
		Retry:     policy.RetryOptions{MaxRetries: -1, TryTimeout: cfg.TryTimeout},
		Telemetry: policy.TelemetryOptions{ApplicationID: "chunkback"},
	}}
	if cfg.HTTPClient != nil {
		opts.Transport = cfg.HTTPClient
	}
	var err error
	if cfg.ConnectionString != "" {
		t.auth = authConnectionString
		t.client, err = container.NewClientFromConnectionString(cfg.ConnectionString, cfg.Container, opts)
		if err != nil {
			// The SDK's parse errors do not quote the string.
			return fmt.Errorf("azure: Config.ConnectionString: %v: %w", err, target.ErrInvalidArgument)
		}
		// The account, for messages: from the container URL the SDK made
		// (its query, a SAS perhaps, dropped).
		if u, perr := url.Parse(t.client.URL()); perr == nil {
			u.RawQuery = ""
			u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/"+cfg.Container)
			if a, _, perr := parseEndpoint(u.String()); perr == nil {
				t.account = a
			}
		}
		return nil
	}
	endpoint, err := cfg.endpoint()
	if err != nil {
		return err
	}
	containerURL := endpoint + "/" + cfg.Container
	switch {
	case cfg.AccountKey != "":
		t.auth = authSharedKey
		cred, kerr := container.NewSharedKeyCredential(t.account, cfg.AccountKey)
		if kerr != nil {
			return fmt.Errorf("azure: Config.AccountKey is not a valid account key: %w", target.ErrInvalidArgument)
		}
		t.client, err = container.NewClientWithSharedKeyCredential(containerURL, cred, opts)
	case cfg.SASToken != "":
		t.auth = authSAS
		t.client, err = container.NewClientWithNoCredential(containerURL+"?"+strings.TrimPrefix(cfg.SASToken, "?"), opts)
	default:
		t.auth = authToken
		cred := cfg.Credential
		switch {
		case cred != nil:
			t.credName = "the identity of Config.Credential"
		case cfg.ManagedIdentity:
			mo := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: opts.Transport}}
			t.credName = "the system-assigned managed identity"
			if cfg.ManagedIdentityClientID != "" {
				mo.ID = azidentity.ClientID(cfg.ManagedIdentityClientID)
				t.credName = fmt.Sprintf("the managed identity with client ID %q", cfg.ManagedIdentityClientID)
			}
			cred, err = azidentity.NewManagedIdentityCredential(mo)
		default:
			t.credName = "the identity DefaultAzureCredential found (environment, workload identity, managed identity or Azure CLI login)"
			cred, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: opts.Transport}})
		}
		if err != nil {
			return fmt.Errorf("azure: %s: %w: %w", t.credName, err, target.ErrPermission)
		}
		t.client, err = container.NewClient(containerURL, cred, opts)
	}
	if err != nil {
		return fmt.Errorf("azure: cannot make a client for %s: %w", t, err)
	}
	return nil
}

// checkContainer lists at most one object, which tells whether the
// container exists and the credentials are good; it creates a missing
// container when Config.Create asks for it.
func (t *Target) checkContainer(ctx context.Context) error {
	one := int32(1)
	prefix := t.prefix
	_, err := t.client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix, MaxResults: &one}).NextPage(ctx)
	if err == nil || !bloberror.HasCode(err, bloberror.ContainerNotFound) || !t.cfg.Create {
		return t.fail(ctx, "open", "", err, errOptions{})
	}
	_, err = t.client.Create(ctx, nil)
	if bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		err = nil // created meanwhile by someone else: what we wanted
	}
	if err != nil {
		return fmt.Errorf("azure: creating container %q (Config.Create): %w", t.container, t.fail(ctx, "create container", t.container, err, errOptions{}))
	}
	return nil
}

// Close implements target.Closer. The target holds no resources beyond
// pooled HTTP connections, so Close does nothing; it exists so callers can
// treat all targets alike.
func (t *Target) Close() error { return nil }

// CinderLayout implements target.LayoutTarget: objects are laid out as
// Cinder's object-store drivers lay them out.
func (t *Target) CinderLayout() target.Layout { return target.LayoutObject }

// UsesContentMD5 implements target.ContentMD5User: PutOptions.ContentMD5 is
// sent to the service and checked.
func (t *Target) UsesContentMD5() bool { return true }

// String describes the target for messages: azblob://account/container/prefix.
func (t *Target) String() string {
	s := "azblob://" + t.account + "/" + t.container
	if t.account == "" {
		s = "azblob://" + t.container
	}
	if t.prefix != "" {
		s += "/" + strings.TrimSuffix(t.prefix, "/")
	}
	return s
}

// blobName is the name of the blob that stores object name.
func (t *Target) blobName(name string) string { return t.prefix + name }

// Get implements target.Target.
func (t *Target) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := target.CheckName(name); err != nil {
		return nil, fmt.Errorf("azure: get: %w", err)
	}
	if offset < 0 {
		return nil, fmt.Errorf("azure: get %q: negative offset %d: %w", name, offset, target.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("azure: get %q: %w", name, err)
	}
	if length == 0 {
		return t.emptyRange(ctx, name, offset)
	}
	o := &blob.DownloadStreamOptions{}
	if offset > 0 || length > 0 {
		o.Range = blob.HTTPRange{Offset: offset, Count: max(length, 0)}
	}
	resp, err := t.client.NewBlobClient(t.blobName(name)).DownloadStream(ctx, o)
	if err != nil {
		if bloberror.HasCode(err, bloberror.InvalidRange) {
			// The service refuses a range that starts at the end, which
			// reads nothing here (an empty object included).
			return t.emptyRange(ctx, name, offset)
		}
		return nil, t.fail(ctx, "get", name, err, errOptions{})
	}
	return resp.Body, nil
}

// emptyRange answers a Get that reads nothing: an empty reader when offset
// is within the object or at its end, ErrInvalidRange beyond it.
func (t *Target) emptyRange(ctx context.Context, name string, offset int64) (io.ReadCloser, error) {
	info, err := t.stat(ctx, "get", name)
	if err != nil {
		return nil, err
	}
	if offset > info.Size {
		return nil, fmt.Errorf("azure: get %q: offset %d is beyond the end of the object (%d bytes): %w", name, offset, info.Size, target.ErrInvalidRange)
	}
	return io.NopCloser(bytes.NewReader(nil)), nil
}

// Stat implements target.Target.
func (t *Target) Stat(ctx context.Context, name string) (target.Info, error) {
	if err := target.CheckName(name); err != nil {
		return target.Info{}, fmt.Errorf("azure: stat: %w", err)
	}
	return t.stat(ctx, "stat", name)
}

func (t *Target) stat(ctx context.Context, op, name string) (target.Info, error) {
	if err := ctx.Err(); err != nil {
		return target.Info{}, fmt.Errorf("azure: %s %q: %w", op, name, err)
	}
	resp, err := t.client.NewBlobClient(t.blobName(name)).GetProperties(ctx, nil)
	if err != nil {
		return target.Info{}, t.fail(ctx, op, name, err, errOptions{})
	}
	if isFolder(resp.Metadata) {
		return target.Info{}, fmt.Errorf("azure: %s %q: a directory of a hierarchical namespace, not an object: %w", op, name, target.ErrNotFound)
	}
	info := target.Info{Name: name}
	if resp.ContentLength != nil {
		info.Size = *resp.ContentLength
	}
	if resp.LastModified != nil {
		info.ModTime = *resp.LastModified
	}
	return info, nil
}

// isFolder tells whether blob metadata marks a directory of an account with
// a hierarchical namespace (Data Lake Storage), which lists directories as
// empty blobs.
func isFolder(md map[string]*string) bool {
	for k, v := range md {
		if strings.EqualFold(k, "hdi_isfolder") && v != nil && strings.EqualFold(*v, "true") {
			return true
		}
	}
	return false
}

// List implements target.Target. The service lists names in lexical order,
// a page of up to 5000 at a time.
func (t *Target) List(ctx context.Context, prefix string, fn func(target.Info) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("azure: list %q: %w", prefix, err)
	}
	for i := 0; i < len(prefix); i++ {
		if c := prefix[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("azure: list: prefix %q contains the control character %#02x: %w", prefix, c, target.ErrInvalidArgument)
		}
	}
	full := t.blobName(prefix)
	pager := t.client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{
		Prefix:  &full,
		Include: container.ListBlobsInclude{Metadata: true},
	})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return t.fail(ctx, "list", prefix, err, errOptions{})
		}
		for _, item := range page.Segment.BlobItems {
			if item.Name == nil || item.Properties == nil || isFolder(item.Metadata) {
				continue
			}
			name, ok := strings.CutPrefix(*item.Name, t.prefix)
			if !ok || target.CheckName(name) != nil {
				continue // not an object of ours
			}
			info := target.Info{Name: name}
			if item.Properties.ContentLength != nil {
				info.Size = *item.Properties.ContentLength
			}
			if item.Properties.LastModified != nil {
				info.ModTime = *item.Properties.LastModified
			}
			if err := fn(info); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("azure: list %q: %w", prefix, err)
		}
	}
	return nil
}

// Delete implements target.Target. Snapshots of the blob, which chunkback
// never makes, go with it.
func (t *Target) Delete(ctx context.Context, name string) error {
	if err := target.CheckName(name); err != nil {
		return fmt.Errorf("azure: delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("azure: delete %q: %w", name, err)
	}
	include := blob.DeleteSnapshotsOptionTypeInclude
	_, err := t.client.NewBlobClient(t.blobName(name)).Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: &include})
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return nil
	}
	if ierr := t.immutableError(ctx, "delete", name, err); ierr != nil {
		return ierr
	}
	return t.fail(ctx, "delete", name, err, errOptions{})
}
