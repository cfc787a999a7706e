// Package ceph is a target.Target that stores backup objects in a Ceph RADOS
// pool, through librados (github.com/ceph/go-ceph).
//
// The target itself needs cgo and the Ceph client libraries (Debian:
// librados-dev), so it is built only with the build tags "ceph" and
// "pacific" (the latter for go-ceph against Ceph 16 Pacific's headers):
//
//	go build -tags ceph,pacific ./...
//
// Without them the package holds only Config, so that code which configures
// the target still builds on machines without librados.
//
// # How objects are stored
//
// RADOS has no rename, lists objects in hash order and caps an object's size
// (osd_max_object_size, 128 MiB by default). So the target keeps, for each
// (pool, namespace, prefix), one index object whose omap maps every object
// name to a small record (size, time, where the data is). An object's bytes
// live in data objects of at most Config.ChunkSize bytes each, named after a
// random write ID, never after the object's name. A Put writes the data
// objects first and publishes the record last, with one atomic
// compare-and-set on the index: an object is visible whole or not at all,
// IfNotExists is atomic, and an overwrite or a Delete removes the data of the
// record it replaced once the new record is in place. List reads the index's
// omap, which is sorted, page by page: lexical and streaming.
//
// The RADOS objects of a target with prefix P are P/chunkback.index and
// P/chunkback.data.<write ID>.<stripe> (without "P/" when there is no
// prefix). A Put that fails midway (an OSD gone, the process killed) may
// leave data objects that no record points to; they are never visible as
// objects and take only space.
package ceph
