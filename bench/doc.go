// Package bench measures chunkback against its reference workload, real
// OpenStack Cinder and restic, and storage targets.
//
// It has four parts, shared by the Go benchmarks (go test -bench . ./bench/)
// and the command bench/cmd/chunkbench:
//
//   - a deterministic source generator (WriteSource, CreateSource,
//     CreateModified): a semi-compressible volume image of alternating random
//     and text regions (and zero regions, in shares set by Mix), and copies
//     of it with a share of scattered blocks changed;
//   - single operations (Spec, Run): one backup, restore or verify by
//     chunkback, or one backup or restore by real Cinder, timed, run in this
//     process or in a child process (RunChild, ChildMain) so that the child's
//     peak RSS is the operation's alone;
//   - the reference workload (Reference, Config, Report): the whole list of
//     operations on one generated file, with the targets checked,
//     printed as a table, CSV or JSON;
//   - the matrix (MatrixConfig, RunMatrix, MatrixReport): every combination
//     of targets, codecs, object sizes, block sizes, workers and operations
//     (raw put and get through target.Target, full and incremental backups,
//     restore, verify), repeated, with restic and Cinder beside chunkback,
//     written as a table, JSON (the format `chunkbench compare` reads), CSV,
//     an SVG chart and a README section.
package bench
