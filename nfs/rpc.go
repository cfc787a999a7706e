package nfs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/willscott/go-nfs-client/nfs/rpc"
	"github.com/willscott/go-nfs-client/nfs/xdr"

	"github.com/chunkback/chunkback/target"
)

// This file is an ONC RPC (RFC 5531) client over TCP: calls multiplexed on
// one connection by transaction id, each bounded by the caller's context
// and a timeout. go-nfs-client's own rpc.Client is not used for the calls:
// it takes no context, retransmits every call up to 100 times with a fixed
// 5 s wait (a dead server blocks a call for minutes), resends
// non-idempotent calls (RENAME, LINK) on a new connection, and can panic
// when the connection breaks while calls are in flight (it closes reply
// channels that its reader may still send on). The message layouts and
// the XDR encoding are the client's (rpc.Header, rpc.Auth, xdr.Write).

// errConnClosed is the error of calls on a connection that was closed.
var errConnClosed = errors.New("connection to the NFS server closed")

// maxRecord bounds one RPC reply record, so a corrupt length cannot make us
// allocate gigabytes. The largest reply is a READ of maxIO bytes.
const maxRecord = maxIO + 64<<10

// rpcConn is one TCP connection to an RPC server, dialled on first use and
// again after it breaks. Calls on it run concurrently.
type rpcConn struct {
	addr        string
	dialTimeout time.Duration
	callTimeout time.Duration
	privileged  bool // bind a source port below 1024

	mu      sync.Mutex
	conn    net.Conn // nil until dialled, and after a failure
	pending map[uint32]chan rpcReply
	xid     uint32
	closed  bool
	wmu     sync.Mutex // serialises writes of whole records
}

type rpcReply struct {
	body []byte // the reply after the xid
	err  error
}

func newRPCConn(addr string, dialTimeout, callTimeout time.Duration, privileged bool) *rpcConn {
	return &rpcConn{
		addr: addr, dialTimeout: dialTimeout, callTimeout: callTimeout, privileged: privileged,
		pending: map[uint32]chan rpcReply{},
		xid:     rand.Uint32(),
	}
}

// close breaks the connection; calls in flight fail, later calls fail at once.
func (c *rpcConn) close() {
	c.mu.Lock()
	c.closed = true
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		c.fail(conn, errConnClosed)
	}
}

// connect returns the live connection, dialling one if needed.
func (c *rpcConn) connect(ctx context.Context) (net.Conn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errConnClosed
	}
	if c.conn != nil {
		conn := c.conn
		c.mu.Unlock()
		return conn, nil
	}
	c.mu.Unlock()

	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		conn.Close()
		return nil, errConnClosed
	case c.conn != nil: // another call dialled meanwhile
		conn.Close()
		return c.conn, nil
	}
	c.conn = conn
	go c.readLoop(conn)
	return conn, nil
}

func (c *rpcConn) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: c.dialTimeout, KeepAlive: 30 * time.Second}
	if !c.privileged {
		return d.DialContext(ctx, "tcp", c.addr)
	}
	// Servers that insist on a reserved source port ("secure" exports)
	// refuse others; binding one needs root or CAP_NET_BIND_SERVICE.
	var err error
	for range 20 {
		d.LocalAddr = &net.TCPAddr{Port: 600 + rand.IntN(424)}
		var conn net.Conn
		conn, err = d.DialContext(ctx, "tcp", c.addr)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			return conn, err
		}
	}
	return nil, err
}

// readLoop delivers the replies read from conn to their calls until conn
// fails.
func (c *rpcConn) readLoop(conn net.Conn) {
	for {
		rec, err := readRecord(conn)
		if err != nil {
			c.fail(conn, err)
			return
		}
		if len(rec) < 4 {
			c.fail(conn, fmt.Errorf("RPC reply of %d bytes: %w", len(rec), target.ErrUnavailable))
			return
		}
		xid := binary.BigEndian.Uint32(rec)
		c.mu.Lock()
		ch, ok := c.pending[xid]
		delete(c.pending, xid)
		c.mu.Unlock()
		if ok {
			ch <- rpcReply{body: rec[4:]} // buffered: never blocks
		}
		// A reply nobody waits for belongs to a call that timed out or
		// was cancelled: drop it.
	}
}

// fail ends conn: every call waiting on it gets err.
func (c *rpcConn) fail(conn net.Conn, err error) {
	conn.Close()
	c.mu.Lock()
	if c.conn != conn {
		c.mu.Unlock()
		return
	}
	c.conn = nil
	pending := c.pending
	c.pending = map[uint32]chan rpcReply{}
	c.mu.Unlock()
	err = c.lost(err)
	for _, ch := range pending {
		ch <- rpcReply{err: err}
	}
}

// lost describes the failure err of the connection; target.NewRetry
// retries it.
func (c *rpcConn) lost(err error) error {
	if errors.Is(err, errConnClosed) || errors.Is(err, errTimeout) || errors.Is(err, target.ErrUnavailable) {
		return err
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("the NFS server at %s closed the connection: %w: %w", c.addr, target.ErrUnavailable, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("connection to the NFS server at %s lost: %w: %w", c.addr, target.ErrUnavailable, err)
}

// readRecord reads one record-marked RPC message (RFC 5531 section 11).
func readRecord(r io.Reader) ([]byte, error) {
	var rec []byte
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, err
		}
		h := binary.BigEndian.Uint32(hdr[:])
		n := int(h & 0x7fffffff)
		if len(rec)+n > maxRecord {
			return nil, fmt.Errorf("RPC reply of more than %d bytes: %w", maxRecord, target.ErrUnavailable)
		}
		start := len(rec)
		rec = append(rec, make([]byte, n)...)
		if _, err := io.ReadFull(r, rec[start:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if h&0x80000000 != 0 {
			return rec, nil
		}
	}
}

// callHeader is the start of an RPC call message.
type callHeader struct {
	Xid     uint32
	MsgType uint32 // 0: CALL
	rpc.Header
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// call sends the procedure proc of program prog with args, XDR-encoded one
// after the other with go-nfs-client's xdr.Write, and returns the results of an accepted, successful reply.
func (c *rpcConn) call(ctx context.Context, prog, vers, proc uint32, cred rpc.Auth, args ...any) (*bytes.Reader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conn, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	ch := make(chan rpcReply, 1)
	c.mu.Lock()
	c.xid++
	xid := c.xid
	c.pending[xid] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, xid)
		c.mu.Unlock()
	}

	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	buf.Write([]byte{0, 0, 0, 0}) // record mark, set below
	err = xdr.Write(buf, callHeader{Xid: xid, Header: rpc.Header{
		Rpcvers: 2, Prog: prog, Vers: vers, Proc: proc, Cred: cred, Verf: rpc.AuthNull,
	}})
	for _, a := range args {
		if err == nil {
			err = xdr.Write(buf, a)
		}
	}
	if err != nil {
		bufPool.Put(buf)
		forget()
		return nil, fmt.Errorf("encoding the RPC call: %w: %w", target.ErrInvalidArgument, err)
	}
	rec := buf.Bytes()
	binary.BigEndian.PutUint32(rec, uint32(len(rec)-4)|0x80000000)

	timer := time.NewTimer(c.callTimeout)
	defer timer.Stop()
	c.wmu.Lock()
	_ = conn.SetWriteDeadline(time.Now().Add(c.callTimeout))
	_, err = conn.Write(rec)
	c.wmu.Unlock()
	if cap(rec) <= 4<<20 {
		bufPool.Put(buf)
	}
	if err != nil {
		// The reader may have seen the connection fail first, with the
		// better reason (the server closed it).
		select {
		case rep := <-ch:
			if rep.err != nil {
				return nil, rep.err
			}
		default:
		}
		forget()
		c.fail(conn, err)
		return nil, c.lost(err)
	}

	var rep rpcReply
	select {
	case rep = <-ch:
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	case <-timer.C:
		forget()
		// A server that stops answering one call is stuck or gone: drop
		// the connection so later calls dial afresh.
		c.fail(conn, errTimeout)
		return nil, fmt.Errorf("no reply from the NFS server at %s within %v: %w", c.addr, c.callTimeout, errTimeout)
	}
	if rep.err != nil {
		return nil, rep.err
	}
	return parseReply(rep.body)
}

// errTimeout is a call that got no reply in time; it is a net.Error with
// Timeout() true, so target.NewRetry retries it as a timeout.
var errTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string   { return "RPC timed out" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// Reply status values (RFC 5531).
const (
	msgReply       = 1
	replyAccepted  = 0
	replyDenied    = 0 + 1
	acceptSuccess  = 0
	acceptProgUnav = 1
	acceptProgMis  = 2
	acceptProcUnav = 3
	acceptGarbage  = 4
	acceptSysErr   = 5
	rejectRPCMis   = 0
	rejectAuthErr  = 1
)

// errAuth is an RPC call the server refused for its credentials.
var errAuth = errors.New("the server rejected the AUTH_SYS credentials")

// parseReply checks an RPC reply (after the xid) and returns its results.
func parseReply(body []byte) (*bytes.Reader, error) {
	r := bytes.NewReader(body)
	var hdr struct{ MsgType, ReplyStat uint32 }
	if err := xdr.Read(r, &hdr); err != nil || hdr.MsgType != msgReply {
		return nil, fmt.Errorf("malformed RPC reply: %w", target.ErrUnavailable)
	}
	if hdr.ReplyStat == replyDenied {
		var rej struct{ Stat, A, B uint32 }
		_ = xdr.Read(r, &rej)
		if rej.Stat == rejectAuthErr {
			return nil, fmt.Errorf("%w (RPC auth_stat %d)", errAuth, rej.A)
		}
		return nil, fmt.Errorf("the server refused the call: RPC version mismatch (it speaks %d-%d): %w", rej.A, rej.B, target.ErrPermanent)
	}
	var verf rpc.Auth
	if err := xdr.Read(r, &verf); err != nil {
		return nil, fmt.Errorf("malformed RPC reply verifier: %w", target.ErrUnavailable)
	}
	stat, err := xdr.ReadUint32(r)
	if err != nil {
		return nil, fmt.Errorf("malformed RPC reply: %w", target.ErrUnavailable)
	}
	switch stat {
	case acceptSuccess:
		return r, nil
	case acceptProgUnav:
		return nil, fmt.Errorf("the server does not offer this RPC program (is the port that of the right service?): %w", target.ErrPermanent)
	case acceptProgMis:
		var v struct{ Low, High uint32 }
		_ = xdr.Read(r, &v)
		return nil, fmt.Errorf("the server offers versions %d-%d of the RPC program, not the one asked for: %w", v.Low, v.High, target.ErrPermanent)
	case acceptProcUnav:
		return nil, fmt.Errorf("the server does not implement this procedure: %w", errNotSupported)
	case acceptGarbage:
		return nil, fmt.Errorf("the server could not decode the call (GARBAGE_ARGS): %w", errNotSupported)
	case acceptSysErr:
		return nil, fmt.Errorf("RPC SYSTEM_ERR on the server: %w", target.ErrUnavailable)
	}
	return nil, fmt.Errorf("RPC accept status %d: %w", stat, target.ErrUnavailable)
}

// errNotSupported is a procedure the server lacks or cannot decode.
var errNotSupported = errors.New("not supported by the server")
