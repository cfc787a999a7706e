// Package targettest holds the conformance suite every target.Target must pass,
// an in-memory Target for unit tests, and a fault-injecting wrapper.
//
// # The contract Run checks
//
// Beyond the method comments of target.Target, every target behaves as follows,
// whatever its store, so that the backup engine and its tests can rely on it:
//
//   - Names. A name is valid when target.CheckName accepts it: non-empty
//     UTF-8 without control characters (NUL included), at most 1024 bytes,
//     '/'-separated elements that are non-empty, not "." or "..", at most 255
//     bytes and not starting with target.ReservedPrefix. So "", "/a", "a/",
//     "a//b", "./a", "a/../b" and "a\x00b" are invalid. Every method given an
//     invalid name fails with an error wrapping target.ErrInvalidArgument
//     before touching the store; object stores, which could hold such names,
//     reject them too so that backups stay portable between targets. Any other
//     byte sequence is a valid name and round-trips unchanged (spaces,
//     unicode, '+', '%', '#', '?', '=', '&', ...).
//   - A name with '/' is one object, not a directory: Stat, Get and Delete of
//     "a" when only "a/b" exists see no object "a". A name must not be both an
//     object and a "directory" of another object ("a" and "a/b"): directory
//     targets cannot store that, so the suite never does it.
//   - List lists recursively: List("") returns every object, nested or not,
//     in byte-wise lexical order of the full names ("a-c" < "a/b" < "a0").
//     A prefix that no valid name can start with (such as "../") lists
//     nothing or fails with target.ErrInvalidArgument.
//   - Put stores exactly size bytes from the body's current position; a body
//     that ends early is an error. A negative size, and a negative Get
//     offset, are target.ErrInvalidArgument.
//   - Get: an offset equal to the size reads nothing; an offset past the end
//     is target.ErrInvalidRange; a length of 0 reads nothing.
//   - Failure leaves nothing behind: a Put that is cancelled or whose body
//     fails leaves no object (or, for an overwrite, the old object intact).
//     A cancelled context makes every method fail with an error wrapping
//     context.Canceled.
//   - Concurrent Puts of one name leave exactly one of the contents; a Get
//     during an overwrite returns the old or the new content, never a mix.
//     Concurrent Puts with IfNotExists of one name let exactly one succeed,
//     unless the target declares Options.NonAtomicIfNotExists.
package targettest
