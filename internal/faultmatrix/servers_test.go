//go:build faultmatrix

package faultmatrix

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/servertest"
)

// scripts is where the server scripts are, from this package's directory.
const scripts = "../../scripts/servers"

// victim is a server process a case kills in the middle of a backup.
type victim struct {
	// What names the process, for the table ("private MinIO").
	What string
	// URL and Env reach the server.
	URL string
	Env map[string]string
	// Kill kills the process with SIGKILL and returns once it is gone.
	Kill func(t *testing.T)
	// Restart brings it back, answering; nil if the kill is not needed
	// again (it runs once per case).
	Restart func(t *testing.T)
}

// victimFor returns the process to kill for a column: a private instance
// where one is cheap, else the shared daemon on the data path, which
// Restart brings back through its script.
func victimFor(t *testing.T, col column) *victim {
	t.Helper()
	switch col.String() {
	case "minio/s3":
		dir := privateDir(t, "minio", nil)
		env := loadEnv(t, dir, "minio")
		return &victim{What: "a private MinIO", URL: env["URL_S3"], Env: env.CLIEnv(),
			Kill:    func(t *testing.T) { killPIDFile(t, env["PID_FILE"]) },
			Restart: func(t *testing.T) { script(t, "minio", "start", dir, nil) }}
	case "fakegcs/gs":
		extra := map[string]string{"FAKEGCS_BACKEND": "filesystem", "FAKEGCS_PORT": strconv.Itoa(freePort(t))}
		dir := privateDir(t, "fakegcs", extra)
		env := loadEnv(t, dir, "fakegcs")
		return &victim{What: "a private fake-gcs-server (filesystem backend)", URL: env["URL_GS"], Env: env.CLIEnv(),
			Kill:    func(t *testing.T) { killPIDFile(t, filepath.Join(dir, "fakegcs", "fake-gcs-server.pid")) },
			Restart: func(t *testing.T) { script(t, "fakegcs", "start", dir, extra) }}
	case "azurite/azblob":
		port := freePort(t)
		extra := map[string]string{"AZURITE_PORT": strconv.Itoa(port), "AZURITE_OAUTH_PORT": strconv.Itoa(freePort(t))}
		dir := privateDir(t, "azurite", extra)
		env := loadEnv(t, dir, "azurite")
		pidFile := filepath.Join(dir, "azurite", "blob.pid")
		var again func(t *testing.T)
		return &victim{What: "a private Azurite (blobs on disk)", URL: env["URL_AZBLOB"], Env: env.CLIEnv(),
			// azurite.sh start would wipe the blobs: start the same
			// command again instead.
			Kill:    func(t *testing.T) { again = respawner(t, pidFile); killPIDFile(t, pidFile) },
			Restart: func(t *testing.T) { again(t); waitTCP(t, "127.0.0.1:"+strconv.Itoa(port)) }}
	case "swift/swift":
		dir := privateDir(t, "swift", nil)
		env := loadEnv(t, dir, "swift")
		pidFile := filepath.Join(dir, "swift", "proxy.pid")
		u, err := url.Parse(env["AUTH_URL"])
		require.NoError(t, err)
		var again func(t *testing.T)
		return &victim{What: "the proxy server of a private Swift", URL: env["URL_SWIFT"], Env: env.CLIEnv(),
			// swift.sh start would make a new cluster on new ports.
			Kill:    func(t *testing.T) { again = respawner(t, pidFile); killPIDFile(t, pidFile) },
			Restart: func(t *testing.T) { again(t); waitTCP(t, u.Host) }}
	case "ganesha/nfs":
		extra := map[string]string{"GANESHA_NFS_PORT": strconv.Itoa(freePort(t)), "GANESHA_MOUNT_PORT": strconv.Itoa(freePort(t))}
		dir := privateDir(t, "ganesha", extra)
		env := loadEnv(t, dir, "ganesha")
		return &victim{What: "a private nfs-ganesha", URL: env["URL_NFS"], Env: env.CLIEnv(),
			Kill:    func(t *testing.T) { killPIDFile(t, env["PID_FILE"]) },
			Restart: func(t *testing.T) { script(t, "ganesha", "start", dir, extra) }}
	case "gonfs/nfs":
		extra := map[string]string{"GONFS_PORT": strconv.Itoa(freePort(t))}
		dir := tempDir(t)
		// The shared server's binary, so the script does not build it again.
		bin, err := os.ReadFile(filepath.Join(servertest.Dir(), "gonfs", "gonfsd"))
		require.NoError(t, err, "the gonfs binary of the shared server")
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "gonfs"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "gonfs", "gonfsd"), bin, 0o755))
		startPrivate(t, "gonfs", dir, extra)
		env := loadEnv(t, dir, "gonfs")
		return &victim{What: "a private go-nfs", URL: env["URL_NFS"], Env: env.CLIEnv(),
			Kill:    func(t *testing.T) { killPIDFile(t, env["PID_FILE"]) },
			Restart: func(t *testing.T) { script(t, "gonfs", "start", dir, extra) }}
	case "ceph/s3", "ceph/swift":
		return &victim{What: "radosgw (shared; ceph.sh start restarts it)", URL: col.URL, Env: col.Env,
			Kill:    func(t *testing.T) { killPIDFile(t, cephRun("client.rgw.gw.pid")) },
			Restart: func(t *testing.T) { script(t, "ceph", "start", "", nil) }}
	case "ceph/rados":
		return &victim{What: "osd.1, the OSD of pool backups-fault (ceph.sh start restarts it)", URL: faultPoolURL(t, col), Env: col.Env,
			Kill:    func(t *testing.T) { killPIDFile(t, cephRun("osd.1.pid")) },
			Restart: func(t *testing.T) { script(t, "ceph", "start", "", nil) }}
	case "gluster/gluster":
		pidFile := brickPIDFile(t)
		return &victim{What: "the brick (glusterfsd; gluster volume start force restarts it)", URL: col.URL, Env: col.Env,
			// A zombie brick (where init reaps late) still passes
			// glusterd's kill(pid, 0): without the pid file it starts a
			// new one.
			Kill:    func(t *testing.T) { killPIDFile(t, pidFile); require.NoError(t, os.Remove(pidFile)) },
			Restart: restartBrick}
	}
	t.Fatalf("%s: no server to kill is known for this column", col)
	return nil
}

func tempDir(t *testing.T) string {
	// Short paths: some daemons put sockets in their state directory.
	dir, err := os.MkdirTemp("", "fm-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// privateDir starts a private instance of server with its state in a new
// directory, stopped when the test ends, and returns the directory.
func privateDir(t *testing.T, server string, extra map[string]string) string {
	dir := tempDir(t)
	startPrivate(t, server, dir, extra)
	return dir
}

func startPrivate(t *testing.T, server, dir string, extra map[string]string) {
	t.Cleanup(func() { script(t, server, "stop", dir, extra) })
	script(t, server, "start", dir, extra)
}

// script runs scripts/servers/<server>.sh action, with its state in dir
// ("" for the shared servers' directory).
func script(t *testing.T, server, action, dir string, extra map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(scripts, server+".sh"), action)
	cmd.Env = os.Environ()
	if dir != "" {
		cmd.Env = append(cmd.Env, servertest.DirEnv+"="+dir)
	}
	for k, v := range extra {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s.sh %s: %s", server, action, out)
	t.Logf("%s.sh %s took %v", server, action, time.Since(start).Round(time.Millisecond))
}

func loadEnv(t *testing.T, dir, server string) servertest.Env {
	t.Helper()
	t.Setenv(servertest.DirEnv, dir)
	env, err := servertest.Load(server)
	require.NoError(t, err)
	return env
}

func cephRun(file string) string {
	return filepath.Join(servertest.Dir(), "ceph", "run", file)
}

// faultPoolURL is col's rados:// URL on the pool backups-fault, which only
// osd.1 serves, so stopping or slowing that OSD stalls no other test.
func faultPoolURL(t *testing.T, col column) string {
	u, err := url.Parse(col.URL)
	require.NoError(t, err)
	u.Host = "backups-fault"
	u.Path = "/faultmatrix"
	return u.String()
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitTCP(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		require.True(t, time.Now().Before(deadline), "%s does not answer: %v", addr, err)
		time.Sleep(100 * time.Millisecond)
	}
}

func readPID(t *testing.T, pidFile string) int {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err, "pid file")
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err, "pid file %s", pidFile)
	return pid
}

// killPIDFile sends SIGKILL to the process in pidFile and waits until it
// is gone (or a zombie, which init may reap late).
func killPIDFile(t *testing.T, pidFile string) {
	t.Helper()
	pid := readPID(t, pidFile)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL), "killing %d (%s)", pid, pidFile)
	for range 1000 {
		if !running(pid) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d (%s) did not die", pid, pidFile)
}

// running reports whether pid runs (a zombie does not).
func running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// signalPIDFile sends sig to the process in pidFile.
func signalPIDFile(t *testing.T, pidFile string, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, syscall.Kill(readPID(t, pidFile), sig))
}

// respawner records how the process in pidFile was started (its command
// line, directory and environment) and returns what starts it again the
// same way, detached, with the new pid in pidFile: for servers whose
// script would wipe their data or change their ports on a restart.
func respawner(t *testing.T, pidFile string) func(t *testing.T) {
	pid := readPID(t, pidFile)
	proc := "/proc/" + strconv.Itoa(pid)
	cmdline, err := os.ReadFile(proc + "/cmdline")
	require.NoError(t, err)
	environ, err := os.ReadFile(proc + "/environ")
	require.NoError(t, err)
	cwd, err := os.Readlink(proc + "/cwd")
	require.NoError(t, err)
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	env := strings.Split(strings.TrimRight(string(environ), "\x00"), "\x00")
	return func(t *testing.T) {
		t.Helper()
		logFile, err := os.OpenFile(pidFile+".respawn.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		require.NoError(t, err)
		defer logFile.Close()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir, cmd.Env = cwd, env
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		require.NoError(t, cmd.Start(), "starting %s again", args[0])
		require.NoError(t, os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644))
		go func() { _ = cmd.Wait() }() // reap it when the script stops it
	}
}

// brickPIDFile returns the pid file of the shared GlusterFS volume's brick.
func brickPIDFile(t *testing.T) string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(servertest.Dir(), "gluster", "run", "vols", "*", "*.pid"))
	require.NoError(t, err)
	require.Len(t, matches, 1, "one brick pid file")
	return matches[0]
}

// glusterCLI runs the gluster CLI against the shared glusterd, the way
// scripts/servers/gluster.sh does (in its network and mount namespaces).
func glusterCLI(t *testing.T, args ...string) string {
	t.Helper()
	env, err := servertest.Load("gluster")
	require.NoError(t, err)
	dir := filepath.Join(servertest.Dir(), "gluster")
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", env["NETNS"], "unshare", "--mount", "--propagation", "private", "sh", "-c",
		`d=$1; shift; mount --bind "$d/var-lib" /var/lib/glusterd && exec gluster --mode=script --glusterd-sock="$d/run/glusterd.socket" --log-file="$d/log/cli.log" "$@"`,
		"sh", dir}, args...)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "gluster %s: %s", strings.Join(args, " "), out)
	return string(out)
}

var brickOnline = regexp.MustCompile(`(?m)^Online\s*:\s*Y`)

// restartBrick restarts the shared volume's killed brick (gluster volume
// start force) and waits until it is online.
func restartBrick(t *testing.T) {
	t.Helper()
	env, err := servertest.Load("gluster")
	require.NoError(t, err)
	vol := env["VOLUME"]
	glusterCLI(t, "volume", "start", vol, "force")
	deadline := time.Now().Add(time.Minute)
	for !brickOnline.MatchString(glusterCLI(t, "volume", "status", vol, "detail")) {
		require.True(t, time.Now().Before(deadline), "the brick of %s is not online again", vol)
		time.Sleep(200 * time.Millisecond)
	}
}

// cephConfigSet runs "ceph daemon NAME config set KEY VALUE" on the shared
// cluster (the daemon's admin socket).
func cephConfigSet(t *testing.T, daemon, key, value string) {
	t.Helper()
	conf := filepath.Join(servertest.Dir(), "ceph", "ceph.conf")
	out, err := exec.Command("ceph", "--conf", conf, "daemon", daemon, "config", "set", key, value).CombinedOutput()
	require.NoError(t, err, "ceph daemon %s config set %s %s: %s", daemon, key, value, out)
}
