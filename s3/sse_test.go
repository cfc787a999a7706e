package s3

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"go/build"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/target"
)

func TestSSEOptionsValidate(t *testing.T) {
	base := Config{Bucket: "bkt"}
	for name, c := range map[string]struct {
		cfg  func(Config) Config
		want string
	}{
		"unknown mode": {func(c Config) Config { c.ServerSideEncryption = "aes256"; return c }, `ServerSideEncryption is "aes256"`},
		"with SSE-C": {func(c Config) Config {
			c.ServerSideEncryption, c.SSECustomerKey, c.Endpoint = ServerSideEncryptionS3, make([]byte, 32), "https://s3.example"
			return c
		}, "not both"},
		"key ID without KMS": {func(c Config) Config { c.SSEKMSKeyID = "k"; return c }, `set it to "aws:kms"`},
		"key ID with SSE-S3": {func(c Config) Config {
			c.SSEKMSKeyID, c.ServerSideEncryption = "k", ServerSideEncryptionS3
			return c
		}, `set it to "aws:kms"`},
	} {
		err := c.cfg(base).Validate()
		require.Error(t, err, name)
		require.ErrorIs(t, err, target.ErrInvalidArgument, name)
		require.ErrorContains(t, err, c.want, name)
	}
	for _, ok := range []Config{
		{Bucket: "bkt", ServerSideEncryption: ServerSideEncryptionS3},
		{Bucket: "bkt", ServerSideEncryption: ServerSideEncryptionKMS},
		{Bucket: "bkt", ServerSideEncryption: ServerSideEncryptionKMS, SSEKMSKeyID: "arn:aws:kms:eu-west-1:1:key/x"},
	} {
		require.NoError(t, ok.Validate())
	}
}

// kmsMinIO starts a MinIO of the test's own with a built-in KMS key named
// keyName (the shared MinIO has no KMS, and must not be restarted), and
// returns it as a server.
func kmsMinIO(t *testing.T, keyName string) server {
	t.Helper()
	shared := minio(t) // the binary comes with the shared server's install
	bin := os.Getenv("MINIO_BIN")
	if bin == "" {
		bin = filepath.Join(build.Default.GOPATH, "bin", "minio")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no MinIO binary at %s: run bash scripts/servers/install.sh minio (or set %s=minio)", bin, servertest.SkipEnv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	secret := randomHex(t) + randomHex(t)
	cmd := exec.Command(bin, "server", t.TempDir(), "--address", addr, "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER=kms-test", "MINIO_ROOT_PASSWORD="+secret,
		"MINIO_KMS_SECRET_KEY="+keyName+":"+base64.StdEncoding.EncodeToString(key))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	endpoint := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("MinIO with a KMS did not start on %s: %s", addr, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return server{name: "minio", endpoint: endpoint, access: "kms-test", secret: secret, reg: shared.reg}
}

// TestSSEOnMinIOWithKMS stores objects with SSE-S3 and SSE-KMS, single PUT
// and multipart, on a real MinIO with a KMS, and checks from the store's own
// replies that each object is encrypted as asked, and reads back.
func TestSSEOnMinIOWithKMS(t *testing.T) {
	const keyName = "chunkback-test-key"
	srv := kmsMinIO(t, keyName)
	ctx := t.Context()
	for _, mode := range []struct{ sse, keyID string }{
		{ServerSideEncryptionS3, ""},
		{ServerSideEncryptionKMS, ""},
		{ServerSideEncryptionKMS, keyName},
	} {
		t.Run(fmt.Sprintf("%s/%s", mode.sse, mode.keyID), func(t *testing.T) {
			cfg := srv.config(t)
			cfg.ServerSideEncryption, cfg.SSEKMSKeyID = mode.sse, mode.keyID
			cfg.MultipartThreshold, cfg.PartSize = 5<<20, 5<<20
			tg := open(t, cfg)
			for name, size := range map[string]int{"small": 1000, "multipart": 6 << 20} {
				data := make([]byte, size)
				_, _ = rand.Read(data)
				require.NoError(t, tg.Put(ctx, name, bytes.NewReader(data), int64(size), target.PutOptions{}), name)
				head, err := tg.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(cfg.Bucket), Key: aws.String(tg.keyPrefix + name)})
				require.NoError(t, err, name)
				require.Equal(t, types.ServerSideEncryption(mode.sse), head.ServerSideEncryption, "%s: the store did not encrypt as asked", name)
				if mode.keyID != "" {
					require.Contains(t, aws.ToString(head.SSEKMSKeyId), mode.keyID, name)
				}
				rc, err := tg.Get(ctx, name, 0, -1)
				require.NoError(t, err, name)
				got, err := io.ReadAll(rc)
				rc.Close()
				require.NoError(t, err, name)
				require.True(t, bytes.Equal(data, got), name)
			}
		})
	}
	t.Run("unknown KMS key", func(t *testing.T) {
		cfg := srv.config(t)
		cfg.ServerSideEncryption, cfg.SSEKMSKeyID = ServerSideEncryptionKMS, "no-such-key"
		tg := open(t, cfg)
		err := tg.Put(ctx, "x", bytes.NewReader([]byte("data")), 4, target.PutOptions{})
		require.Error(t, err, "the store ignored the KMS key ID")
	})
	t.Run("plain", func(t *testing.T) {
		tg := open(t, srv.config(t))
		require.NoError(t, tg.Put(ctx, "x", bytes.NewReader([]byte("data")), 4, target.PutOptions{}))
		head, err := tg.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(tg.cfg.Bucket), Key: aws.String(tg.keyPrefix + "x")})
		require.NoError(t, err)
		require.Empty(t, head.ServerSideEncryption, "without the option the object is stored plain")
	})
}
