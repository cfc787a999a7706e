package gcs

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/credentials"
	"cloud.google.com/go/storage"

	"github.com/chunkback/chunkback/target"
)

// credentialTypes are the "type" values of credentials files that
// Config.CredentialsFile accepts.
func credentialTypes() []credentials.CredType {
	return []credentials.CredType{
		credentials.ServiceAccount,
		credentials.ExternalAccount,
		credentials.AuthorizedUser,
		credentials.ImpersonatedServiceAccount,
		credentials.ExternalAccountAuthorizedUser,
	}
}

// loadCredentials returns the credentials cfg asks for, and a description of
// them for error messages that tell the user what to check (never a secret).
// client fetches tokens (through the configured proxy).
func loadCredentials(cfg Config, client *http.Client) (*auth.Credentials, string, error) {
	opts := &credentials.DetectOptions{
		Scopes: []string{storage.ScopeFullControl},
		Client: client,
	}
	if cfg.CredentialsFile == "" {
		const adc = "Application Default Credentials (the file GOOGLE_APPLICATION_CREDENTIALS names, " +
			"`gcloud auth application-default login`, or the service account or workload identity of this machine)"
		creds, err := credentials.DetectDefault(opts)
		if err != nil {
			return nil, "", fmt.Errorf("gcs: no Google credentials found: set Config.CredentialsFile (or GOOGLE_APPLICATION_CREDENTIALS) "+
				"to a service-account key file, run `gcloud auth application-default login`, or run with a service account on Google Cloud; "+
				"for an emulator set Config.Anonymous or STORAGE_EMULATOR_HOST (%v): %w", err, target.ErrPermission)
		}
		return creds, adc, nil
	}

	file := cfg.CredentialsFile
	bad := func(format string, args ...any) error {
		return fmt.Errorf("gcs: credentials file %s (Config.CredentialsFile / GOOGLE_APPLICATION_CREDENTIALS) "+format+": %w",
			append(append([]any{file}, args...), target.ErrPermission)...)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", bad("does not exist; give the path of the JSON key of a service account (IAM > Service accounts > Keys)")
		}
		return nil, "", bad("cannot be read: %v", errors.Unwrap(err))
	}
	// Only the fields that tell what the file is; the key stays unparsed
	// here and out of every message.
	var head struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, "", bad("is not valid JSON (%v); download the service account's key again (JSON format, not P12)", jsonProblem(err))
	}
	typ := credentials.CredType(head.Type)
	if !slices.Contains(credentialTypes(), typ) {
		return nil, "", bad("has type %q; give a service-account key (\"type\": %q) or another Google credentials file (%v)",
			head.Type, credentials.ServiceAccount, credentialTypes())
	}
	desc := fmt.Sprintf("the credentials file %s (%s)", file, head.Type)
	if typ == credentials.ServiceAccount {
		if head.ClientEmail == "" || head.PrivateKey == "" {
			return nil, "", bad("is a service-account key without client_email or private_key; download the key again")
		}
		if !parsesAsKey(head.PrivateKey) {
			return nil, "", bad("has a private_key that is not a PEM-encoded RSA key; download the key again")
		}
		// The account's e-mail is an identifier, not a secret: the user
		// grants roles to it.
		desc = fmt.Sprintf("service account %s from the credentials file %s", head.ClientEmail, file)
	}
	creds, err := credentials.NewCredentialsFromJSON(typ, data, opts)
	if err != nil {
		return nil, "", bad("is not usable: %v", err)
	}
	return creds, desc, nil
}

// jsonProblem describes a JSON decoding error without quoting the file.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field == "" {
		return "not a JSON object"
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	}
	return "cannot be decoded"
}

// parsesAsKey reports whether key is a PEM block holding a private key the
// client library can sign with (PKCS #8 or PKCS #1).
func parsesAsKey(key string) bool {
	block, _ := pem.Decode([]byte(key))
	if block == nil {
		return false
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		return true
	}
	_, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	return err == nil
}

// checkToken fetches a token once, so that credentials that do not work
// fail in New with one clear error rather than in the first backup request.
func checkToken(ctx context.Context, creds *auth.Credentials, desc string) error {
	_, err := creds.Token(ctx)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("gcs: fetching a token for %s: %w", desc, ctx.Err())
	}
	return authError("", "", desc, err)
}

// authError classifies a failure to get a token: an answer of the token
// endpoint that says the credentials are wrong is ErrPermission; one that
// says it is busy is a retryable *target.StatusError; an error without an
// answer (no network) is returned as it is, and retried.
func authError(op, name, desc string, err error) error {
	where := "gcs"
	if op != "" {
		where = fmt.Sprintf("gcs: %s %q", op, name)
	}
	var ae *auth.Error
	if errors.As(err, &ae) && ae.Response != nil {
		answer := fmt.Sprintf("the token endpoint answered HTTP %d: %s", ae.Response.StatusCode, oneLine(ae.Body, 300))
		if ae.Temporary() {
			return fmt.Errorf("%s: fetching a token for %s: %w", where, desc,
				&target.StatusError{Op: op, Name: name, Code: ae.Response.StatusCode, Err: errors.New(answer)})
		}
		return fmt.Errorf("%s: the credentials were refused (%s): check %s: %w", where, answer, desc, target.ErrPermission)
	}
	if isNetworkError(err) {
		return fmt.Errorf("%s: fetching a token for %s: %w", where, desc, err)
	}
	return fmt.Errorf("%s: the credentials cannot be used (%v): check %s: %w", where, err, desc, target.ErrPermission)
}

// oneLine returns b as one line of at most n bytes, for error messages.
func oneLine(b []byte, n int) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}
