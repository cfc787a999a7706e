package s3

import (
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Server-side encryption with keys the store manages (Config.ServerSideEncryption).
const (
	// ServerSideEncryptionS3 is SSE-S3: the store's own keys.
	ServerSideEncryptionS3 = "AES256"
	// ServerSideEncryptionKMS is SSE-KMS: keys of the store's KMS
	// (Config.SSEKMSKeyID, or its default one).
	ServerSideEncryptionKMS = "aws:kms"
)

// validateSSE checks the server-side encryption options against each other.
func (c Config) validateSSE() error {
	switch c.ServerSideEncryption {
	case "", ServerSideEncryptionS3, ServerSideEncryptionKMS:
	default:
		return fmt.Errorf("ServerSideEncryption is %q; use %q (SSE-S3), %q (SSE-KMS) or leave it empty (the bucket's default)",
			c.ServerSideEncryption, ServerSideEncryptionS3, ServerSideEncryptionKMS)
	}
	if c.ServerSideEncryption != "" && len(c.SSECustomerKey) > 0 {
		return errors.New("ServerSideEncryption and SSECustomerKey are both set; an object is encrypted with the store's keys or with yours (SSE-C), not both")
	}
	if c.SSEKMSKeyID != "" && c.ServerSideEncryption != ServerSideEncryptionKMS {
		return fmt.Errorf("SSEKMSKeyID is set but ServerSideEncryption is %q; set it to %q", c.ServerSideEncryption, ServerSideEncryptionKMS)
	}
	return nil
}

// kmsKeyID returns the SSE-KMS key to send, or nil.
func (t *Target) kmsKeyID() *string {
	if t.cfg.SSEKMSKeyID == "" {
		return nil
	}
	return aws.String(t.cfg.SSEKMSKeyID)
}
