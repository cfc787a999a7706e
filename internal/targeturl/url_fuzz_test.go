package targeturl

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/chunkback/chunkback/target"
)

// fuzzSecret is what every environment variable holds in the fuzzer: any
// of it in an error is a leaked credential.
const fuzzSecret = "Fz9SecretValue0Qx"

// fuzzSecretVars are the credentials the schemes read from the environment.
var fuzzSecretVars = [...]string{
	"AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "OS_PASSWORD",
	"OS_AUTH_TOKEN", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CONNECTION_STRING",
}

// configParser reads a URL (and the environment) into a scheme's
// configuration without connecting.
type configParser func(u *url.URL, getenv func(string) string) error

func configParsers() map[string]configParser {
	m := map[string]configParser{
		"s3":     func(u *url.URL, g func(string) string) error { _, err := s3ConfigFromURL(u, g); return err },
		"swift":  func(u *url.URL, g func(string) string) error { _, err := swiftConfigFromURL(u, g); return err },
		"gs":     func(u *url.URL, g func(string) string) error { _, err := gcsConfig(u, g); return err },
		"azblob": func(u *url.URL, g func(string) string) error { _, err := azureConfig(u, g); return err },
		"nfs":    func(u *url.URL, _ func(string) string) error { _, err := nfsConfig(u); return err },
	}
	addTaggedParsers(m)
	return m
}

// FuzzTargetURL: reading any --target URL into a configuration never
// panics; a refusal wraps target.ErrInvalidArgument, and no error echoes a
// credential from the environment or the URL's password.
func FuzzTargetURL(f *testing.F) {
	for _, s := range []string{
		"s3://chunkback-minio/ci?endpoint=http://127.0.0.1:59681&region=us-east-1&path_style=true",
		"s3://bucket/p?object_lock=true&md5=false&checksum=when_required",
		"s3://user:" + fuzzSecret + "@bucket/p",
		"s3://bucket/p?timeout=1m&part_size=x",
		"swift://chunkback-swift/ci",
		"swift://c/p?auth_version=3&storage_policy=gold",
		"gs://chunkback-ci/ci",
		"azblob://chunkback-ci/ci?endpoint=http://127.0.0.1:10000/devstoreaccount1&immutable=true",
		"azblob://c/p?sig=" + fuzzSecret + "&sv=2020",
		"nfs://127.0.0.1:12049/export/ci?mount_port=12048",
		"rados://backups/ci?conf=/etc/ceph/ceph.conf&id=admin&keyring=/k",
		"gluster://10.203.0.2/chunkback/ci",
		"s3://%zz/", "azblob://", "nfs://h", "gs:///x", "swift://c/p?x=1",
	} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(0xff))
		f.Add(s, uint8(0x05))
	}
	parsers := configParsers()
	f.Fuzz(func(t *testing.T, raw string, envMask uint8) {
		name, _, ok := strings.Cut(raw, "://")
		parse := parsers[name]
		if !ok || parse == nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			return // Open reports url.Parse's error as it is
		}
		// Each secret variable is set, or not, as envMask says; the others
		// stay empty (their parsing is not about secrets).
		getenv := func(k string) string {
			for i, v := range fuzzSecretVars {
				if v == k && envMask&(1<<i) != 0 {
					return fuzzSecret + k
				}
			}
			return ""
		}
		err = parse(u, getenv)
		if err == nil {
			return
		}
		if !errors.Is(err, target.ErrInvalidArgument) {
			t.Fatalf("%s: error does not wrap target.ErrInvalidArgument: %v", raw, err)
		}
		msg := err.Error()
		if strings.Contains(msg, fuzzSecret) && !strings.Contains(raw, fuzzSecret) {
			t.Fatalf("%s: the error echoes a credential from the environment: %v", raw, err)
		}
		if pw, set := u.User.Password(); set && len(pw) >= 6 && strings.Contains(msg, pw) && !strings.Contains(strings.Replace(raw, pw, "", 1), pw) {
			t.Fatalf("%s: the error echoes the URL's password: %v", raw, err)
		}
	})
}
