package azure_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/azure"
	"github.com/chunkback/chunkback/internal/servertest"
)

// azurite is the Azurite instance scripts/servers/azurite.sh started.
type azurite struct {
	endpoint, account, key, connectionString string
	oauthEndpoint, oauthCA                   string
}

func requireAzurite(t *testing.T) azurite {
	t.Helper()
	env := servertest.Require(t, "azurite")
	return azurite{
		endpoint:         env.Get(t, "ENDPOINT"),
		account:          env.Get(t, "ACCOUNT"),
		key:              env.Get(t, "KEY"),
		connectionString: env.Get(t, "CONNECTION_STRING"),
		oauthEndpoint:    env.Get(t, "OAUTH_ENDPOINT"),
		oauthCA:          env.Get(t, "OAUTH_CA"),
	}
}

// sharedKey returns a Config for container with Shared Key credentials.
func (a azurite) sharedKey(container string) azure.Config {
	return azure.Config{Endpoint: a.endpoint, AccountName: a.account, AccountKey: a.key, Container: container}
}

// adminClient is an SDK client of container with the account key, to set
// up and inspect what the target did.
func (a azurite) adminClient(t *testing.T, name string) *container.Client {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(a.account, a.key)
	require.NoError(t, err)
	c, err := container.NewClientWithSharedKeyCredential(a.endpoint+"/"+name, cred, nil)
	require.NoError(t, err)
	return c
}

// sas signs a container SAS with the account key.
func (a azurite) sas(t *testing.T, name string, perms sas.ContainerPermissions, expiry time.Time) string {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(a.account, a.key)
	require.NoError(t, err)
	qp, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		ExpiryTime:    expiry.UTC(),
		Permissions:   perms.String(),
		ContainerName: name,
	}.SignWithSharedKey(cred)
	require.NoError(t, err)
	return qp.Encode()
}

// newContainer creates a container of a fresh name, deleted when the test
// ends.
func (a azurite) newContainer(t *testing.T) string {
	t.Helper()
	name := randomName("cb")
	c := a.adminClient(t, name)
	_, err := c.Create(t.Context(), nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = c.Delete(ctx, nil)
	})
	return name
}

// randomName returns a name usable as a container or a prefix.
func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

func newTarget(t *testing.T, cfg azure.Config) *azure.Target {
	t.Helper()
	tg, err := azure.New(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tg.Close() })
	return tg
}
