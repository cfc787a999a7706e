package tcpfault

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// upstream is a TCP server on loopback that echoes what it reads, or, when
// send is set, writes send and closes. It records how many bytes it read.
type upstream struct {
	ln   net.Listener
	send []byte
	mu   sync.Mutex
	got  int64
	wg   sync.WaitGroup
}

func newUpstream(t *testing.T, send []byte) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := &upstream{ln: ln, send: send}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer c.Close()
				if u.send != nil {
					_, _ = c.Write(u.send)
					return
				}
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					u.mu.Lock()
					u.got += int64(n)
					u.mu.Unlock()
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); u.wg.Wait() })
	return u
}

func (u *upstream) received() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.got
}

func newProxy(t *testing.T, up *upstream, seed uint64) *Proxy {
	t.Helper()
	p, err := New(Config{Upstream: up.ln.Addr().String(), Seed: seed})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

func dial(t *testing.T, p *Proxy) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// roundTrip writes msg and reads as many bytes back.
func roundTrip(c net.Conn, msg []byte) ([]byte, error) {
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	got := make([]byte, len(msg))
	_, err := io.ReadFull(c, got)
	return got, err
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7 >> 3)
	}
	return b
}

func TestForwardsUntouchedWithoutFaults(t *testing.T) {
	up := newUpstream(t, nil)
	p := newProxy(t, up, 1)
	c := dial(t, p)
	msg := pattern(1 << 20)
	go func() { _, _ = c.Write(msg) }()
	got := make([]byte, len(msg))
	_, err := io.ReadFull(c, got)
	require.NoError(t, err)
	require.True(t, bytes.Equal(msg, got))
	st := p.Stats()
	assert.EqualValues(t, 1, st.Accepted)
	assert.EqualValues(t, len(msg), st.Bytes[ClientToServer])
	assert.EqualValues(t, len(msg), st.Bytes[ServerToClient])
	assert.Zero(t, st.Resets+st.Closes+st.Dropped+st.DialErrors)
}

func TestLatencyIsAddedPerDirectionAndPipelined(t *testing.T) {
	up := newUpstream(t, nil)
	p := newProxy(t, up, 1)
	c := dial(t, p)
	_, err := roundTrip(c, []byte("warm"))
	require.NoError(t, err)

	require.NoError(t, p.Set(ClientToServer, Faults{Latency: 60 * time.Millisecond}))
	start := time.Now()
	_, err = roundTrip(c, []byte("x"))
	require.NoError(t, err)
	one := time.Since(start)
	assert.GreaterOrEqual(t, one, 60*time.Millisecond)

	require.NoError(t, p.SetBoth(Faults{Latency: 60 * time.Millisecond, Jitter: 20 * time.Millisecond}))
	start = time.Now()
	_, err = roundTrip(c, []byte("y"))
	require.NoError(t, err)
	both := time.Since(start)
	assert.GreaterOrEqual(t, both, 120*time.Millisecond, "latency both ways")
	assert.Less(t, both, 400*time.Millisecond)

	// 20 chunks sent back to back arrive about one latency later, not 20.
	start = time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			_, _ = c.Write(pattern(1000))
			time.Sleep(2 * time.Millisecond)
		}
	}()
	_, err = io.ReadFull(c, make([]byte, 20*1000))
	require.NoError(t, err)
	wg.Wait()
	assert.Less(t, time.Since(start), 600*time.Millisecond, "chunks are delayed in a pipeline, not one after another")

	p.Clear()
	start = time.Now()
	_, err = roundTrip(c, []byte("z"))
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 50*time.Millisecond, "Clear removes the latency")
}

func TestBandwidthCap(t *testing.T) {
	up := newUpstream(t, nil)
	p := newProxy(t, up, 1)
	require.NoError(t, p.Set(ServerToClient, Faults{BytesPerSecond: 1 << 20}))
	c := dial(t, p)
	start := time.Now()
	msg := pattern(256 << 10)
	go func() { _, _ = c.Write(msg) }()
	_, err := io.ReadFull(c, make([]byte, len(msg)))
	require.NoError(t, err)
	took := time.Since(start)
	assert.GreaterOrEqual(t, took, 200*time.Millisecond, "256 KiB at 1 MiB/s")
	assert.Less(t, took, 2*time.Second)
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func TestResetAfterBytesCutsBothPeers(t *testing.T) {
	up := newUpstream(t, nil)
	p := newProxy(t, up, 1)
	require.NoError(t, p.Set(ClientToServer, Faults{ResetAfter: 100 << 10, Times: 1}))
	c := dial(t, p)
	go func() { _, _ = c.Write(pattern(1 << 20)) }()
	_, err := io.Copy(io.Discard, c)
	require.Error(t, err, "the client sees a reset, not an orderly end")
	assert.True(t, isReset(err), "got %v", err)
	// The bytes before the cut were sent; a peer that had not read them
	// yet loses them to the RST, as from a real one.
	assert.EqualValues(t, 100<<10, p.Stats().Bytes[ClientToServer])
	assert.LessOrEqual(t, up.received(), int64(100<<10))
	assert.EqualValues(t, 1, p.Stats().Resets)

	// Times: 1 — the next connection is not cut.
	c2 := dial(t, p)
	msg := pattern(300 << 10)
	go func() { _, _ = c2.Write(msg) }()
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c2, got)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(msg, got))
}

func TestCloseAfterEndsTheReplyEarly(t *testing.T) {
	reply := pattern(200 << 10)
	up := newUpstream(t, reply)
	p := newProxy(t, up, 1)
	require.NoError(t, p.Set(ServerToClient, Faults{CloseAfter: 50000}))
	c := dial(t, p)
	got, err := io.ReadAll(c)
	require.NoError(t, err, "a close is an orderly end")
	assert.Equal(t, reply[:50000], got)
	assert.EqualValues(t, 1, p.Stats().Closes)
}

// resetAt runs a ping-pong of one-byte messages through a proxy with
// random resets and returns the message the connection was reset at.
func resetAt(t *testing.T, seed uint64) int {
	up := newUpstream(t, nil)
	p := newProxy(t, up, seed)
	require.NoError(t, p.Set(ClientToServer, Faults{ResetProbability: 0.1}))
	c := dial(t, p)
	for i := range 1000 {
		if _, err := roundTrip(c, []byte{byte(i)}); err != nil {
			return i
		}
	}
	t.Fatal("no reset in 1000 messages at probability 0.1")
	return -1
}

func TestRandomResetsFollowTheSeed(t *testing.T) {
	first := resetAt(t, 42)
	assert.Equal(t, first, resetAt(t, 42), "the same seed resets at the same message")
	seen := map[int]bool{first: true}
	for seed := range uint64(6) {
		seen[resetAt(t, seed+100)] = true
	}
	assert.Greater(t, len(seen), 1, "other seeds reset elsewhere")
}

func TestBlackholeSilencesUntilLiftedAndKillsTheConnectionsItTouched(t *testing.T) {
	up := newUpstream(t, nil)
	p := newProxy(t, up, 1)
	touched := dial(t, p)
	idle := dial(t, p)
	_, err := roundTrip(idle, []byte("before"))
	require.NoError(t, err)

	require.NoError(t, p.SetBoth(Faults{Blackhole: true}))
	_, err = touched.Write([]byte("lost"))
	require.NoError(t, err)
	require.NoError(t, touched.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, err = touched.Read(make([]byte, 4))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "no answer and no error: a timeout")
	fresh := dial(t, p) // accepted, but nothing crosses
	_, err = fresh.Write([]byte("lost too"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return p.Stats().Dropped == int64(len("lost")+len("lost too")) }, time.Second, 5*time.Millisecond)
	assert.Zero(t, up.received()-int64(len("before")), "the server got nothing")

	p.Clear()
	_, err = roundTrip(idle, []byte("after"))
	require.NoError(t, err, "a connection that lost nothing works again")
	_, err = roundTrip(dial(t, p), []byte("new"))
	require.NoError(t, err, "new connections work again")
	_, err = touched.Write([]byte("again"))
	require.NoError(t, err)
	require.NoError(t, touched.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	_, err = touched.Read(make([]byte, 5))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "a connection that lost data stays silent")
}

func TestStartAfterArmsFaultsMidTransfer(t *testing.T) {
	up := newUpstream(t, nil)
	p := newProxy(t, up, 1)
	require.NoError(t, p.Set(ClientToServer, Faults{StartAfter: 3000, Blackhole: true}))
	c := dial(t, p)
	for range 3 {
		_, err := roundTrip(c, pattern(1000))
		require.NoError(t, err, "before StartAfter bytes, nothing happens")
	}
	_, err := c.Write([]byte("dropped"))
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.EqualValues(t, 3000, up.received())
}

func TestRefuseAndResume(t *testing.T) {
	up := newUpstream(t, nil)
	p := newProxy(t, up, 1)
	open := dial(t, p)
	require.NoError(t, p.Refuse(true))
	_, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	_, err = roundTrip(open, []byte("still here"))
	require.NoError(t, err, "open connections are kept")
	require.NoError(t, p.Refuse(false))
	_, err = roundTrip(dial(t, p), []byte("back"))
	require.NoError(t, err, "the same address works again")
}

func TestUpstreamDownResetsTheClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	p, err := New(Config{Upstream: addr, DialTimeout: time.Second})
	require.NoError(t, err)
	defer p.Close()
	// The reset may come while connecting or at the first read.
	c, err := net.Dial("tcp", p.Addr())
	if err == nil {
		defer c.Close()
		_, err = c.Read(make([]byte, 1))
	}
	require.Error(t, err)
	assert.True(t, isReset(err), "got %v", err)
	assert.EqualValues(t, 1, p.Stats().DialErrors)
}

func TestResetAllAndClose(t *testing.T) {
	up := newUpstream(t, nil)
	p, err := New(Config{Upstream: up.ln.Addr().String()})
	require.NoError(t, err)
	a, b := dial(t, p), dial(t, p)
	for _, c := range []net.Conn{a, b} {
		_, err := roundTrip(c, []byte("x"))
		require.NoError(t, err)
	}
	p.ResetAll()
	for _, c := range []net.Conn{a, b} {
		_, err := c.Read(make([]byte, 1))
		assert.True(t, isReset(err), "got %v", err)
	}
	require.Eventually(t, func() bool { return p.Stats().Open == 0 }, time.Second, 5*time.Millisecond)
	c := dial(t, p)
	_, err = roundTrip(c, []byte("y"))
	require.NoError(t, err)
	require.NoError(t, p.Close())
	_, err = c.Read(make([]byte, 1))
	assert.Error(t, err, "Close ends open connections")
	require.Error(t, p.Refuse(false), "a closed proxy stays closed")
}

func TestInvalidConfigNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Config.Upstream"},
		{Config{Upstream: "127.0.0.1"}, "Config.Upstream"},
		{Config{Upstream: "127.0.0.1:1", Listen: "nope"}, "Config.Listen"},
		{Config{Upstream: "127.0.0.1:1", DialTimeout: -1}, "Config.DialTimeout"},
		{Config{Upstream: "127.0.0.1:1", ChunkSize: -1}, "Config.ChunkSize"},
	} {
		_, err := New(tc.cfg)
		require.ErrorIs(t, err, ErrInvalidConfig)
		assert.Contains(t, err.Error(), tc.want)
	}
	up := newUpstream(t, nil)
	p := newProxy(t, up, 1)
	for _, tc := range []struct {
		f    Faults
		want string
	}{
		{Faults{StartAfter: -1}, "Faults.StartAfter"},
		{Faults{Latency: -1}, "Faults.Latency"},
		{Faults{Jitter: -1}, "Faults.Jitter"},
		{Faults{BytesPerSecond: -1}, "Faults.BytesPerSecond"},
		{Faults{ResetAfter: -1}, "Faults.ResetAfter"},
		{Faults{CloseAfter: -1}, "Faults.CloseAfter"},
		{Faults{ResetProbability: 1.5}, "Faults.ResetProbability"},
		{Faults{Times: -1}, "Faults.Times"},
	} {
		err := p.Set(ClientToServer, tc.f)
		require.ErrorIs(t, err, ErrInvalidConfig)
		assert.Contains(t, err.Error(), tc.want)
		require.ErrorIs(t, p.SetBoth(tc.f), ErrInvalidConfig)
	}
	require.ErrorIs(t, p.Set(Direction(7), Faults{}), ErrInvalidConfig)
}
