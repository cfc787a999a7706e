package tcpfault

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidConfig is wrapped by every error about a Config or Faults value
// the proxy cannot use.
var ErrInvalidConfig = errors.New("tcpfault: invalid configuration")

// Direction is the way bytes flow through a proxied connection.
type Direction int

const (
	// ClientToServer carries what the client sends: requests, uploads.
	ClientToServer Direction = iota
	// ServerToClient carries what the server sends: replies, downloads.
	ServerToClient
)

// String returns "client->server" or "server->client".
func (d Direction) String() string {
	switch d {
	case ClientToServer:
		return "client->server"
	case ServerToClient:
		return "server->client"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// Faults is what the proxy does to the bytes flowing one way through every
// connection. The zero value forwards them untouched. The proxy forwards
// in chunks of what one read returns (at most Config.ChunkSize bytes);
// latency, resets and probabilities apply per chunk.
type Faults struct {
	// StartAfter delays every other fault of this direction until the
	// proxy has forwarded this many bytes this way (over all connections)
	// since the faults were set: "mid-transfer". 0 starts at once.
	StartAfter int64

	// Latency delays each chunk by this long from when it arrived, plus a
	// uniformly random part of Jitter (drawn from Config.Seed). Chunks
	// keep their order and flow pipelined, as on a long link.
	Latency, Jitter time.Duration

	// BytesPerSecond caps each connection's throughput this way (0: no cap).
	BytesPerSecond int64

	// ResetAfter resets a connection (a TCP RST to both peers, as a crashed
	// host or a firewall sends) once it has forwarded this many bytes this
	// way since the faults took effect. The bytes before the cut are sent,
	// but a peer that has not read them yet loses them to the RST, as with
	// a real one. 0 never.
	ResetAfter int64
	// ResetProbability resets the connection before a chunk with this
	// probability (0 to 1), drawn from Config.Seed.
	ResetProbability float64
	// CloseAfter closes a connection normally (FIN to both peers) once it
	// has forwarded this many bytes this way since the faults took
	// effect: a server that hangs up in the middle of a reply. 0 never.
	CloseAfter int64
	// Times is how many resets and closes these faults may cause in all;
	// 0 means no limit.
	Times int

	// Blackhole drops every byte: connections stay open and silent, so
	// peers see a timeout, not an error. A connection that lost data this
	// way stays silent even after the blackhole is lifted (its peers'
	// views of the stream no longer agree, as after a dead path); new
	// connections, and connections that lost nothing, work again.
	Blackhole bool
}

// Validate reports the first field the proxy cannot use, naming it and the
// fix. The error wraps ErrInvalidConfig.
func (f Faults) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: Faults."+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case f.StartAfter < 0:
		return bad("StartAfter is %d; use 0 (at once) or a number of bytes", f.StartAfter)
	case f.Latency < 0:
		return bad("Latency is %v; use 0 or a positive duration", f.Latency)
	case f.Jitter < 0:
		return bad("Jitter is %v; use 0 or a positive duration", f.Jitter)
	case f.BytesPerSecond < 0:
		return bad("BytesPerSecond is %d; use 0 (no cap) or a positive rate", f.BytesPerSecond)
	case f.ResetAfter < 0:
		return bad("ResetAfter is %d; use 0 (never) or a number of bytes", f.ResetAfter)
	case f.CloseAfter < 0:
		return bad("CloseAfter is %d; use 0 (never) or a number of bytes", f.CloseAfter)
	case !(f.ResetProbability >= 0 && f.ResetProbability <= 1): // also NaN
		return bad("ResetProbability is %v; use a probability from 0 to 1", f.ResetProbability)
	case f.Times < 0:
		return bad("Times is %d; use 0 (no limit) or a positive count", f.Times)
	}
	return nil
}

// cuts reports whether the faults can end connections.
func (f Faults) cuts() bool {
	return f.ResetAfter > 0 || f.CloseAfter > 0 || f.ResetProbability > 0
}
