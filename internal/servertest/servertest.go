// Package servertest finds the real storage servers the target tests run
// against. scripts/servers/<server>.sh start runs a server on loopback and
// writes what a client needs (endpoints, test credentials) to
// <Dir>/<server>.env as KEY=VALUE lines; Require reads it back.
//
// A server that is missing fails the test, with the command that starts it:
// CI must never pass by skipping. A developer who wants to skip some servers
// says so with CHUNKBACK_SKIP_SERVERS=minio,swift (or "all").
//
// Environment:
//
//	CHUNKBACK_SERVERS_DIR   where the start scripts write (default /tmp/chunkback-servers)
//	CHUNKBACK_SKIP_SERVERS  comma-separated servers to skip, or "all"
//	CHUNKBACK_<SERVER>_<KEY> overrides one value of <server>.env
package servertest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// DirEnv names the directory the start scripts write their .env files to.
const DirEnv = "CHUNKBACK_SERVERS_DIR"

// SkipEnv lists the servers whose tests skip instead of failing.
const SkipEnv = "CHUNKBACK_SKIP_SERVERS"

// Dir returns the directory of the servers' .env files.
func Dir() string {
	if d := os.Getenv(DirEnv); d != "" {
		return d
	}
	return "/tmp/chunkback-servers"
}

// Servers returns the name of every server scripts/servers/start.sh starts,
// in the order it starts them.
func Servers() []string {
	return []string{"ceph", "minio", "swift", "fakegcs", "azurite", "ganesha", "gonfs", "gluster"}
}

// Env is what a server's start script wrote: KEY -> value.
type Env map[string]string

// Skipped reports whether the developer asked to skip server's tests.
func Skipped(server string) bool {
	list := strings.Split(os.Getenv(SkipEnv), ",")
	for i := range list {
		list[i] = strings.TrimSpace(list[i])
	}
	return slices.Contains(list, "all") || slices.Contains(list, server)
}

// Load reads server's .env file, with CHUNKBACK_<SERVER>_<KEY> environment
// variables taking precedence. The error says how to start the server.
func Load(server string) (Env, error) {
	path := filepath.Join(Dir(), server+".env")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("server %s is not running (no %s): start it with `bash scripts/servers/start.sh %s`, "+
			"or set %s=%s to skip its tests", server, path, server, SkipEnv, server)
	}
	defer f.Close()
	env := Env{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s: line %q is not KEY=VALUE", path, line)
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	prefix := "CHUNKBACK_" + strings.ToUpper(server) + "_"
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if key, ok := strings.CutPrefix(k, prefix); ok {
			env[key] = v
		}
	}
	return env, nil
}

// Require returns server's Env, or ends the test: a skip if the developer
// asked for one (SkipEnv), a failure otherwise.
func Require(tb testing.TB, server string) Env {
	tb.Helper()
	if Skipped(server) {
		tb.Skipf("server %s skipped (%s=%s)", server, SkipEnv, os.Getenv(SkipEnv))
	}
	env, err := Load(server)
	if err != nil {
		tb.Fatal(err)
	}
	return env
}

// Get returns the value of key, failing the test if the start script did
// not write it.
func (e Env) Get(tb testing.TB, key string) string {
	tb.Helper()
	v, ok := e[key]
	if !ok {
		tb.Fatalf("server env has no %s (keys: %v)", key, e.keys())
	}
	return v
}

// URLs returns the --target URLs the server serves, by kind (the KIND of
// each URL_<KIND> key, lower case: "s3", "swift", ...).
func (e Env) URLs() map[string]string {
	urls := map[string]string{}
	for k, v := range e {
		if kind, ok := strings.CutPrefix(k, "URL_"); ok {
			urls[strings.ToLower(kind)] = v
		}
	}
	return urls
}

// CLIEnv returns the environment variables a client needs to open the
// server's URLs (the CLI_<VAR> keys, without the prefix).
func (e Env) CLIEnv() map[string]string {
	vars := map[string]string{}
	for k, v := range e {
		if name, ok := strings.CutPrefix(k, "CLI_"); ok {
			vars[name] = v
		}
	}
	return vars
}

// SetCLIEnv sets the server's CLIEnv for the rest of the test (tb.Setenv).
func (e Env) SetCLIEnv(tb interface{ Setenv(key, value string) }) {
	for k, v := range e.CLIEnv() {
		tb.Setenv(k, v)
	}
}

func (e Env) keys() []string {
	ks := make([]string, 0, len(e))
	for k := range e {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
