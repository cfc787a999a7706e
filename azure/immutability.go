package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/chunkback/chunkback/target"
)

// Blob immutability (Config.Immutability): every Put that asks for
// retention (PutOptions.RetainUntil) sets a blob-level immutability policy
// with that expiry, "Unlocked" for RetentionGovernance and "Locked" for
// RetentionCompliance, so the Blob service itself refuses to delete or
// overwrite the blob before then. The container (or account) must have
// version-level immutability support enabled; Azurite does not implement
// immutability policies at all.

var _ target.RetentionEnforcer = (*Target)(nil)

// EnforcesRetention implements target.RetentionEnforcer: true when
// Config.Immutability is set.
func (t *Target) EnforcesRetention() bool { return t.cfg.Immutability }

// immutability returns the policy mode and expiry of a Put, or (nil, nil).
func (t *Target) immutability(opts target.PutOptions) (*blob.ImmutabilityPolicySetting, *time.Time) {
	if !t.cfg.Immutability || opts.RetainUntil.IsZero() {
		return nil, nil
	}
	mode := blob.ImmutabilityPolicySettingUnlocked
	if opts.RetentionMode == target.RetentionCompliance {
		mode = blob.ImmutabilityPolicySettingLocked
	}
	until := opts.RetainUntil.UTC()
	return &mode, &until
}

// immutableError reports a write or delete the service refused because of
// an immutability policy or legal hold as target.ErrImmutable, or returns
// nil for any other error.
func (t *Target) immutableError(ctx context.Context, op, name string, err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusConflict {
		return nil
	}
	switch bloberror.Code(re.ErrorCode) {
	case bloberror.BlobImmutableDueToPolicy, "BlobImmutableDueToLegalHold":
		return fmt.Errorf("%w (%w: the blob's immutability policy retains it)", t.fail(ctx, op, name, err, errOptions{}), target.ErrImmutable)
	}
	return nil
}
