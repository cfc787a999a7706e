// Package compress implements the per-object compression of OpenStack Cinder's
// chunked backup driver (cinder/backup/chunkeddriver.py), byte-compatible with
// what Cinder's Python code writes and reads.
//
// # Names
//
// Cinder's backup_compression_algorithm option is case-insensitive and accepts
// these names; each object's "compression" field in the backup's _metadata
// records the configured name lower-cased, so "gzip" or "bzip2" appear as
// well as "zlib" and "bz2":
//
//	none, off, no  no compression; recorded as "none"
//	zlib, gzip     RFC 1950 zlib stream (78 9c ... Adler-32), as Python's
//	               zlib.compress(data) at level 6. "gzip" is NOT RFC 1952.
//	bz2, bzip2     bzip2 stream as Python's bz2.compress(data), level 9 ("BZh9")
//	zstd           one Zstandard frame with Frame_Content_Size set, as
//	               python-zstd's zstd.compress(data) at level 3; python-zstd
//	               rejects frames without a content size.
//
// [New] builds a codec for backing up (it trims surrounding white space, like
// a value read from cinder.conf); [ForMetadata] returns the codec that reads an
// object, given its "compression" field (not trimmed, as in Cinder). Both
// lower-case the name.
//
// # The store-raw rule
//
// Cinder compresses each object and, if the compressed form is not smaller
// than the data (len(compressed) >= len(data), typical for random or already
// compressed data), stores the raw data instead and records "compression":
// "none" for that object. One backup therefore mixes "none" with the
// configured name, and every object must be decompressed according to its own
// field. [Codec.Compress] reports this with smaller=false; the caller then
// stores src as-is and records "none".
//
// To avoid paying the full compression time for incompressible data,
// Compress first compresses a small sample of large inputs with a fast
// level and gives up (smaller=false) if the sample does not shrink; see
// [Options.DisableSampling]. Either way the stored result is valid Cinder
// format.
//
// # Decompression safety
//
// [Codec.Decompress] is told the expected uncompressed length (the object's
// "length" field) and never produces or allocates more than that: longer or
// shorter output, trailing data after the compressed stream and corrupt input
// are all errors wrapping [ErrCorrupt]. This is stricter than Python, whose
// zlib.decompress and bz2.decompress ignore trailing garbage; Cinder never
// writes any. The caller is responsible for bounding the length it passes
// (Decompress allocates a buffer of that length when dst is too small).
//
// [DecompressFrom] does the same for compressed data read from an
// [io.Reader] (an object as it arrives from the store), so that a restore
// holds only the decompressed object, not the stored one as well. Its
// checks are Decompress's; an error of the reader itself is returned as
// that error, not as corruption. [DecompressFromUnchecked] skips zlib's
// Adler-32 for callers that check every byte themselves.
//
// [CompressWithin] compresses holding input and output together within a
// bound: past a given amount of output, it hands back the input it has
// consumed, so a backup keeps about one object per worker in memory.
// [EncoderMemory] estimates what each encoder holds besides.
package compress
