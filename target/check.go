package target

import (
	"context"
	"fmt"
)

// Checker is implemented by targets that can tell cheaply, without writing
// anything, whether they are usable: the store answers, it accepts the
// credentials, and the container (bucket, pool, export, directory) exists.
// Every target of this module implements it with its cheapest native call
// (see each package's Check); NewRetry and NewLimit pass it through As.
type Checker interface {
	// Check makes that call. Refused credentials wrap ErrPermission, a
	// missing container ErrNotFound, a store that does not answer
	// ErrUnavailable (or stays unclassified, like any network failure);
	// the message says what to fix, without secrets.
	Check(ctx context.Context) error
}

// Check runs the Check of t, or of the first target it decorates that is a
// Checker (see As). supported is false, and err nil, when none is.
func Check(ctx context.Context, t Target) (supported bool, err error) {
	c, ok := As[Checker](t)
	if !ok {
		return false, nil
	}
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("check: %w", err)
	}
	return true, c.Check(ctx)
}
