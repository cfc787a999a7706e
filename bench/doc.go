// Package bench measures chunkback against its reference workload and
// against real OpenStack Cinder.
//
// It has three parts, shared by the Go benchmarks (go test -bench . ./bench/)
// and the command bench/cmd/chunkbench:
//
//   - a deterministic source generator (WriteSource, CreateSource,
//     CreateModified): a semi-compressible volume image of alternating random
//     and text regions, and copies of it with a share of scattered blocks
//     changed;
//   - single operations (Spec, Run): one backup, restore or verify by
//     chunkback, or one backup or restore by real Cinder, timed, run in this
//     process or in a child process (RunChild, ChildMain) so that the child's
//     peak RSS is the operation's alone;
//   - the reference workload (Reference, Config, Report): the whole list of
//     operations on one generated file, with the targets checked,
//     printed as a table, CSV or JSON.
package bench
