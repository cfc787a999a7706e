package main

import (
	"bufio"
	"bytes"
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/servertest"
)

// credLeakHelperEnv makes the test binary act as the chunkback command
// (TestCredLeakHelperProcess), so the leak tests see everything the real
// process writes, libraries' own logging included.
const credLeakHelperEnv = "CHUNKBACK_CREDLEAK_HELPER"

// TestCredLeakHelperProcess is the chunkback command when the test binary
// is run by cliProcess; otherwise it does nothing.
func TestCredLeakHelperProcess(t *testing.T) {
	if os.Getenv(credLeakHelperEnv) != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(run(context.Background(), args, os.Stdout, os.Stderr))
}

// credentialVars are the environment variables any target reads
// credentials or endpoints from; cliProcess clears them so each run sees
// only what it is given.
var credentialVars = regexp.MustCompile(`^(AWS_|OS_|AZURE_|GOOGLE_|STORAGE_EMULATOR_HOST|CHUNKBACK_S3_|SSL_CERT_)`)

// cliProcess runs chunkback in a child process with env added to a clean
// environment and returns its exit code and everything it wrote, stdout
// and stderr interleaved.
func cliProcess(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^TestCredLeakHelperProcess$", "--"}, args...)...)
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !credentialVars.MatchString(k) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, credLeakHelperEnv+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if code < 0 {
		t.Fatalf("chunkback %v did not exit: %v\n%s", args, err, out.String())
	}
	return code, out.String()
}

// secretName matches the names of variables that hold secrets. Access key
// IDs (*_KEY_ID) name an identity, like a user name, and are left out.
var secretName = regexp.MustCompile(`KEY|SECRET|PASSWORD|TOKEN|SAS|CONNECTION_STRING`)

// secretsOf returns the secret values in vars: each secret variable's
// value, the AccountKey and SharedAccessSignature inside a connection
// string, and the key in a Ceph keyring file a URL names.
func secretsOf(t *testing.T, vars map[string]string, targetURL string) []string {
	t.Helper()
	var secrets []string
	for k, v := range vars {
		if !secretName.MatchString(k) || strings.HasSuffix(k, "_KEY_ID") || v == "" {
			continue
		}
		if strings.Contains(k, "CONNECTION_STRING") {
			for _, part := range strings.Split(v, ";") {
				if name, val, ok := strings.Cut(part, "="); ok && (name == "AccountKey" || name == "SharedAccessSignature") {
					secrets = append(secrets, val)
				}
			}
			continue // its other parts (endpoint, account name) are not secret
		}
		secrets = append(secrets, v)
	}
	if m := regexp.MustCompile(`keyring=([^&]+)`).FindStringSubmatch(targetURL); m != nil {
		if f, err := os.Open(m[1]); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.TrimSpace(k) == "key" {
					secrets = append(secrets, strings.TrimSpace(v))
				}
			}
			f.Close()
		}
	}
	slices.Sort(secrets)
	return slices.Compact(secrets)
}

// leaks returns the pieces of any secret found in out: the whole secret,
// or any 8 characters of it in a row, unless those also occur in public
// (the command line and the non-secret settings: a secret may share a word
// with a bucket name).
func leaks(out, public string, secrets []string) []string {
	var found []string
	for _, s := range secrets {
		if strings.Contains(out, s) {
			found = append(found, s)
			continue
		}
		for i := 0; i+8 <= len(s); i++ {
			w := s[i : i+8]
			if strings.Contains(out, w) && !strings.Contains(public, w) {
				found = append(found, w)
				break
			}
		}
	}
	return found
}

// mangle returns s with every letter and digit rotated: a wrong secret of
// the same length and alphabet (a base64 key stays base64).
func mangle(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = 'a' + (c-'a'+7)%26
		case c >= 'A' && c <= 'Z':
			b[i] = 'A' + (c-'A'+7)%26
		case c >= '0' && c <= '9':
			b[i] = '0' + (c-'0'+3)%10
		}
	}
	return string(b)
}

// mangleVar returns a wrong value of the secret variable k: in a
// connection string only the key, so it still names the endpoint.
func mangleVar(k, v string) string {
	if !strings.Contains(k, "CONNECTION_STRING") {
		return mangle(v)
	}
	parts := strings.Split(v, ";")
	for i, part := range parts {
		if name, val, ok := strings.Cut(part, "="); ok && name == "AccountKey" {
			parts[i] = name + "=" + mangle(val)
		}
	}
	return strings.Join(parts, ";")
}

// unreachable points every loopback endpoint in s at a closed port.
func unreachable(s string) string {
	return regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(s, "127.0.0.1:1")
}

// hasCommand reports whether this chunkback has the command name.
func hasCommand(name string) bool {
	var out bytes.Buffer
	run(context.Background(), []string{name, "-h"}, &out, &out)
	return !strings.Contains(out.String(), "unknown command")
}

// credLeakRun is one way of running the commands: its environment and URL,
// the secrets they hold, and what the commands printed.
type credLeakRun struct {
	name    string
	env     map[string]string
	url     string
	secrets []string
	out     string
}

// schemeVars are the prefixes of the variables each URL kind reads.
var schemeVars = map[string][]string{
	"s3": {"AWS_"}, "swift": {"OS_"}, "azblob": {"AZURE_"}, "gs": {"GOOGLE_", "STORAGE_EMULATOR_HOST"},
}

func readBy(kind, name string) bool {
	return slices.ContainsFunc(schemeVars[kind], func(p string) bool { return strings.HasPrefix(name, p) })
}

// TestNoCredentialLeaks runs every command against every server's URLs,
// with the right credentials, with each secret the URL's scheme reads
// wrong (for rados://, a keyring with a wrong key), and with the endpoint
// unreachable, and greps all they print (text, --json and --progress json)
// for the secrets of each run.
func TestNoCredentialLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the CLI many times against every server")
	}
	src, _ := volume(t, 2<<20)
	for _, server := range servertest.Servers() {
		t.Run(server, func(t *testing.T) {
			env := servertest.Require(t, server)
			vars := env.CLIEnv()
			for _, kind := range slices.Sorted(maps.Keys(env.URLs())) {
				u := env.URLs()[kind]
				if len(secretsOf(t, vars, u)) == 0 {
					continue // nothing secret to leak (nfs://, gluster://, gs:// on the emulator)
				}
				t.Run(kind, func(t *testing.T) {
					runs := []*credLeakRun{{name: "right", env: vars, url: u}}
					for _, k := range slices.Sorted(maps.Keys(vars)) {
						if readBy(kind, k) && secretName.MatchString(k) && !strings.HasSuffix(k, "_KEY_ID") {
							wrong := maps.Clone(vars)
							wrong[k] = mangleVar(k, vars[k])
							runs = append(runs, &credLeakRun{name: "wrong " + k, env: wrong, url: u})
						}
					}
					if m := regexp.MustCompile(`keyring=([^&]+)`).FindStringSubmatch(u); m != nil {
						runs = append(runs, &credLeakRun{name: "wrong keyring", env: vars, url: strings.Replace(u, m[1], wrongKeyring(t, m[1]), 1)})
					}
					down, changed := maps.Clone(vars), unreachable(u) != u
					for k, v := range vars {
						if readBy(kind, k) && unreachable(v) != v {
							down[k], changed = unreachable(v), true
						}
					}
					if changed {
						runs = append(runs, &credLeakRun{name: "unreachable", env: down, url: unreachable(u)})
					}
					for _, r := range runs {
						r.secrets = secretsOf(t, r.env, r.url)
						t.Run(r.name, func(t *testing.T) { r.out = credLeakCommands(t, r, src) })
					}
					for _, r := range runs {
						checkLeaks(t, r, runs)
					}
				})
			}
		})
	}
}

// wrongKeyring copies a Ceph keyring with its key mangled.
func wrongKeyring(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		if k, v, ok := strings.Cut(l, "="); ok && strings.TrimSpace(k) == "key" {
			lines[i] = k + "= " + mangle(strings.TrimSpace(v))
		}
	}
	wrong := filepath.Join(t.TempDir(), "wrong.keyring")
	require.NoError(t, os.WriteFile(wrong, []byte(strings.Join(lines, "\n")), 0o600))
	return wrong
}

// checkLeaks greps r's output for its secrets. Text that a run without a
// secret printed too (a message that names Config.SecretKey, say) is
// public, as are the command line and the non-secret settings.
func checkLeaks(t *testing.T, r *credLeakRun, runs []*credLeakRun) {
	t.Helper()
	public := r.url
	for k, v := range r.env {
		if !secretName.MatchString(k) || strings.HasSuffix(k, "_KEY_ID") {
			public += " " + k + "=" + v
		} else if strings.Contains(k, "CONNECTION_STRING") {
			for _, part := range strings.Split(v, ";") {
				if name, _, _ := strings.Cut(part, "="); name != "AccountKey" && name != "SharedAccessSignature" {
					public += " " + part
				}
			}
		}
	}
	for _, s := range r.secrets {
		pub := public
		for _, other := range runs {
			if !slices.Contains(other.secrets, s) {
				pub += "\n" + other.out
			}
		}
		if found := leaks(r.out, pub, []string{s}); len(found) > 0 {
			t.Errorf("%s: the output holds secret material %q:\n%s", r.name, found, r.out)
		}
	}
}

// credLeakCommands runs backup, list, show, verify, restore, delete (and
// check, when this chunkback has it) as r says, checks that the right
// credentials work and the others fail, and returns all they printed.
func credLeakCommands(t *testing.T, r *credLeakRun, src string) string {
	t.Helper()
	var all strings.Builder
	ok := r.name == "right"
	exec := func(args ...string) {
		code, out := cliProcess(t, r.env, args...)
		all.WriteString(out)
		if ok {
			require.Equal(t, 0, code, "chunkback %v:\n%s", args, out)
		} else {
			require.NotEqual(t, 0, code, "chunkback %v succeeded with %s:\n%s", args, r.name, out)
		}
	}
	id := "c1ea" + time.Now().Format("20060102150405.000000")
	exec("backup", "--target", r.url, "--volume-id", "credleak", "--backup-id", id, "--object-size", "1048576", "--progress", "json", "--json", src)
	exec("list", "--target", r.url, "--volume-id", "credleak", "--json")
	exec("show", "--target", r.url, "--backup-id", id, "--json")
	exec("verify", "--target", r.url, "--backup-id", id, "--progress", "json", "--json")
	exec("restore", "--target", r.url, "--backup-id", id, "--progress", "json", "--json", filepath.Join(t.TempDir(), "restored.img"))
	exec("delete", "--target", r.url, "--backup-id", id, "--chain", "--json")
	if hasCommand("check") {
		exec("check", "--target", r.url, "--json")
	}
	t.Logf("%d bytes of output, %d secrets", all.Len(), len(r.secrets))
	return all.String()
}

// TestLeakCheckFindsLeaks: the grep itself finds a secret, whole or in
// part, and ignores what the command line shows anyway.
func TestLeakCheckFindsLeaks(t *testing.T) {
	secrets := []string{"chunkback-minio-secret", "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="}
	public := "s3://chunkback-minio/ci"
	require.Empty(t, leaks("chunkback list: bucket chunkback-minio not found", public, secrets))
	require.NotEmpty(t, leaks("auth failed for chunkback-minio-secret", public, secrets))
	require.NotEmpty(t, leaks("signature o-secret!", public, secrets), "8 characters of a secret")
	require.NotEmpty(t, leaks("key ...FTOtr/KBHB...", public, secrets))
	for _, s := range secrets {
		m := mangle(s)
		require.Len(t, m, len(s))
		require.Empty(t, leaks(m, "", []string{s}), "a mangled secret shares no 8 characters with the right one")
		require.Equal(t, strings.Count(s, "/")+strings.Count(s, "="), strings.Count(m, "/")+strings.Count(m, "="), "base64 stays base64")
	}
	vars := map[string]string{
		"AWS_ACCESS_KEY_ID": "chunkback", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value", "AWS_REGION": "us-east-1",
		"AZURE_STORAGE_CONNECTION_STRING": "AccountName=a;AccountKey=abc123==;BlobEndpoint=http://x",
	}
	require.Equal(t, []string{"abc123==", "s3cr3t-value"}, secretsOf(t, vars, ""))
}

// TestTLSVerifiedByDefault: the CLI verifies the store's certificate unless
// told otherwise: against MinIO's and Azurite's HTTPS instances, whose CA
// it is not given, every command fails with the certificate error; given
// the CA, the same command works, so nothing else was wrong.
func TestTLSVerifiedByDefault(t *testing.T) {
	t.Run("s3", func(t *testing.T) {
		env := servertest.Require(t, "minio")
		vars := env.CLIEnv()
		u := "s3://chunkback-tls-default/ci?endpoint=" + env.Get(t, "TLS_ENDPOINT") + "&region=" + env.Get(t, "REGION") + "&path_style=true"
		code, out := cliProcess(t, vars, "list", "--target", u)
		require.NotEqual(t, 0, code, out)
		require.Contains(t, out, "x509", "the refusal names the certificate problem")
		require.Contains(t, out, "ca_bundle", "and says how to trust the CA")
		withCA := maps.Clone(vars)
		withCA["AWS_CA_BUNDLE"] = env.Get(t, "CA_FILE")
		src, _ := volume(t, 100_000)
		code, out = cliProcess(t, withCA, "backup", "--target", u, "--create", "--volume-id", "tls", "--json", src)
		require.Equal(t, 0, code, out)
		id := jsonOut(t, out)["backup_id"].(string)
		code, out = cliProcess(t, withCA, "delete", "--target", u, "--backup-id", id)
		require.Equal(t, 0, code, out)
	})
	t.Run("azblob", func(t *testing.T) {
		env := servertest.Require(t, "azurite")
		vars := map[string]string{"AZURE_STORAGE_ACCOUNT": env.Get(t, "ACCOUNT"), "AZURE_STORAGE_KEY": env.Get(t, "KEY")}
		u := "azblob://chunkback-tls-default/ci?endpoint=" + env.Get(t, "OAUTH_ENDPOINT")
		code, out := cliProcess(t, vars, "list", "--target", u)
		require.NotEqual(t, 0, code, out)
		require.Regexp(t, "x509|certificate", out)
		require.Empty(t, leaks(out, u, []string{env.Get(t, "KEY")}))
		withCA := maps.Clone(vars)
		withCA["SSL_CERT_FILE"] = env.Get(t, "OAUTH_CA") // Go's system roots
		src, _ := volume(t, 100_000)
		code, out = cliProcess(t, withCA, "backup", "--target", u, "--create", "--volume-id", "tls", "--json", src)
		require.Equal(t, 0, code, out)
		id := jsonOut(t, out)["backup_id"].(string)
		code, out = cliProcess(t, withCA, "delete", "--target", u, "--backup-id", id)
		require.Equal(t, 0, code, out)
	})
}
