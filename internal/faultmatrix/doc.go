// Package faultmatrix holds chunkback's fault matrix: a test that backs a
// small volume up into every target kind of every real server (the URL_
// entries of internal/servertest's env files) under each fault of the
// issue's list, and checks one invariant every time: the backup either
// completes and restores byte for byte, or fails in bounded time with a
// clear, classified error that leaks no credential, and then no backup
// looks complete (List does not show it, Find fails).
//
// The faults come from internal/tcpfault (latency, connection resets, a
// blackhole) put in front of the server's address, internal/httpfault (429
// and 503 bursts with Retry-After) for the HTTP stores, killing the server
// process in the middle of a backup, and damaging a stored object through
// the target API (truncated, deleted, one bit flipped), after which restore
// must fail with backup.ErrCorrupt naming the object and verify must report
// it. Where a client talks to daemons whose addresses come from the
// cluster (RADOS: the OSDs; GlusterFS: the bricks) a proxy can only sit in
// front of the first contact; the test injects those faults into the
// daemon instead (Ceph's own fault injection, SIGSTOP) and the table says
// which.
//
// The test files are built only with the tag faultmatrix, because some
// cases stop and restart shared servers (radosgw, the fault OSD of Ceph,
// the GlusterFS brick): run the matrix alone, after the other tests.
//
//	go test -tags faultmatrix,ceph,pacific,gluster -count=1 -timeout 30m ./internal/faultmatrix/
//
// CHUNKBACK_FAULT_TABLE=path writes the outcome table (rows: faults;
// columns: target kinds) there as markdown.
package faultmatrix
