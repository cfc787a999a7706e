package s3

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

// withCredentials returns a copy of tg that signs with other credentials.
func withCredentials(tg *Target, access, secret string) *Target {
	bad := *tg
	o := tg.client.Options()
	o.Credentials = credentials.NewStaticCredentialsProvider(access, secret, "")
	// A new signer: the SDK's caches derived signing keys by access key ID
	// alone, so the old one would sign with the old secret.
	o.HTTPSignerV4, o.AuthSchemes = nil, nil
	bad.client = s3.New(o)
	return &bad
}

func TestCheck(t *testing.T) {
	for _, srv := range []func(*testing.T) server{minio, radosgw} {
		s := srv(t)
		t.Run(s.name, func(t *testing.T) {
			cfg := s.config(t)
			smallParts(&cfg) // the probe's large object goes up in parts
			tg := open(t, cfg)
			targettest.CheckProbe(t, tg, 9<<20)

			t.Run("wrong secret", func(t *testing.T) {
				const wrong = "wrong-secret-0123456789abcdefghijklmn"
				err := withCredentials(tg, s.access, wrong).Check(t.Context())
				require.ErrorIs(t, err, target.ErrPermission)
				require.Contains(t, err.Error(), "secret key")
				require.NotContains(t, err.Error(), wrong)
				require.NotContains(t, err.Error(), s.secret)
			})
			t.Run("wrong access key", func(t *testing.T) {
				err := withCredentials(tg, "NOSUCHACCESSKEY0000", s.secret).Check(t.Context())
				require.ErrorIs(t, err, target.ErrPermission)
				require.Contains(t, err.Error(), "access key ID")
				require.NotContains(t, err.Error(), s.secret)
			})
			t.Run("missing bucket", func(t *testing.T) {
				missing := *tg
				missing.cfg.Bucket = "chunkback-missing-" + randomHex(t)
				err := missing.Check(t.Context())
				require.ErrorIs(t, err, target.ErrNotFound)
				require.Contains(t, err.Error(), "bucket "+missing.cfg.Bucket+" does not exist")
				require.Contains(t, err.Error(), "create it")
			})
		})
	}
}
