package azure_test

import (
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/azure"
	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

func TestAzureCheck(t *testing.T) {
	a := requireAzurite(t)
	cfg := a.sharedKey(a.newContainer(t))
	cfg.Prefix = "ci"
	cfg.BlockSize = 4 << 20 // the probe's large object goes up in blocks
	targettest.CheckProbe(t, newTarget(t, cfg), 9<<20)

	wrong := cfg
	wrong.AccountKey = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk="
	_, err := azure.New(t.Context(), wrong)
	require.ErrorIs(t, err, target.ErrPermission, "a wrong key is refused at New")
	require.NotContains(t, err.Error(), wrong.AccountKey)
	require.NotContains(t, err.Error(), a.key)
}

// A SAS that expires after the target was opened: Check says the
// credentials are refused.
func TestAzureCheckExpiredCredentials(t *testing.T) {
	a := requireAzurite(t)
	name := a.newContainer(t)
	token := a.sas(t, name, sas.ContainerPermissions{Read: true, List: true}, time.Now().Add(2*time.Second))
	tg := newTarget(t, azure.Config{Endpoint: a.endpoint, SASToken: token, Container: name})
	require.NoError(t, tg.Check(t.Context()))
	time.Sleep(3 * time.Second)
	err := tg.Check(t.Context())
	require.ErrorIs(t, err, target.ErrPermission)
	require.ErrorContains(t, err, "refused the credentials")
	require.ErrorContains(t, err, "SAS token")
	sig := strings.SplitN(strings.SplitN(token, "sig=", 2)[1], "&", 2)[0]
	require.NotContains(t, err.Error(), sig)
}

// A container deleted after the target was opened is ErrNotFound, with
// what to do.
func TestAzureCheckMissingContainer(t *testing.T) {
	a := requireAzurite(t)
	name := a.newContainer(t)
	tg := newTarget(t, a.sharedKey(name))
	_, err := a.adminClient(t, name).Delete(t.Context(), nil)
	require.NoError(t, err)
	err = tg.Check(t.Context())
	require.ErrorIs(t, err, target.ErrNotFound)
	require.ErrorContains(t, err, `container "`+name+`" does not exist`)
	require.ErrorContains(t, err, "create it")
}

// A SAS that may read and list but not write: the probe reports read-only
// credentials.
func TestAzureProbeReadOnly(t *testing.T) {
	a := requireAzurite(t)
	name := a.newContainer(t)
	token := a.sas(t, name, sas.ContainerPermissions{Read: true, List: true}, time.Now().Add(time.Hour))
	tg := newTarget(t, azure.Config{Endpoint: a.endpoint, SASToken: token, Container: name})
	r, _ := targettest.ProbeReadOnly(t, tg)
	require.Contains(t, r.Problems[0], "read-only credentials")
	check, _ := r.Step(target.StepCheck)
	require.True(t, check.OK)
}
