package sha

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/chunkback/chunkback/internal/pyjson"
)

// Each hash is one line of the sha256s list: four spaces, the quoted hex hash,
// a comma (except after the last) and a newline. Every line has the same
// length, so any byte of the encoding can be computed without the rest, which
// lets Reader serve a manifest of millions of blocks without rendering it.
const (
	hashIndent  = "    "
	hashLineLen = len(hashIndent) + 1 + 64 + 1 + 1 + 1 // `    "<hex>",\n`
)

// Reader returns the manifest's JSON encoding, exactly as Cinder writes it
// (json.dumps(sort_keys=True, indent=2)), as a seekable reader that renders
// the hash lines on the fly: memory stays small however many blocks there are.
// The manifest must not change while the reader is in use.
func (m *Manifest) Reader() (*EncodedReader, error) {
	if m.BlockSize <= 0 {
		return nil, fmt.Errorf("sha256 manifest: block size %d must be positive", m.BlockSize)
	}
	head := []byte("{\n  \"backup_description\": ")
	head, _ = pyjson.AppendValue(head, m.BackupDescription, 1)
	head = append(head, ",\n  \"backup_id\": "...)
	head = pyjson.AppendString(head, m.BackupID)
	head = append(head, ",\n  \"backup_name\": "...)
	head, _ = pyjson.AppendValue(head, m.BackupName, 1)
	head = append(head, ",\n  \"chunk_size\": "...)
	head = strconv.AppendInt(head, int64(m.BlockSize), 10)
	head = append(head, ",\n  \"created_at\": "...)
	head = pyjson.AppendString(head, m.CreatedAt)
	head = append(head, ",\n  \"sha256s\": "...)
	var tail []byte
	if len(m.Hashes) == 0 {
		head = append(head, "[]"...)
	} else {
		head = append(head, "[\n"...)
		tail = append(tail, "  ]"...)
	}
	tail = append(tail, ",\n  \"version\": "...)
	tail = pyjson.AppendString(tail, m.Version)
	tail = append(tail, ",\n  \"volume_id\": "...)
	tail = pyjson.AppendString(tail, m.VolumeID)
	tail = append(tail, "\n}"...)
	body := int64(len(m.Hashes)) * int64(hashLineLen)
	if len(m.Hashes) > 0 {
		body-- // the last line has no comma
	}
	return &EncodedReader{m: m, head: head, tail: tail, body: body}, nil
}

// Encode returns the whole encoding in memory (for small manifests and tests).
func (m *Manifest) Encode() ([]byte, error) {
	r, err := m.Reader()
	if err != nil {
		return nil, err
	}
	out := make([]byte, r.Size())
	_, err = io.ReadFull(r, out)
	return out, err
}

// EncodedReader is an io.ReadSeeker over a manifest's encoding.
type EncodedReader struct {
	m          *Manifest
	head, tail []byte
	body       int64
	pos        int64
}

// Size returns the length of the encoding in bytes.
func (r *EncodedReader) Size() int64 { return int64(len(r.head)) + r.body + int64(len(r.tail)) }

// Seek implements io.Seeker.
func (r *EncodedReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.Size()
	default:
		return 0, errors.New("sha256 manifest reader: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("sha256 manifest reader: negative position")
	}
	r.pos = offset
	return offset, nil
}

// Read implements io.Reader.
func (r *EncodedReader) Read(p []byte) (int, error) {
	n := 0
	headLen := int64(len(r.head))
	for n < len(p) && r.pos < r.Size() {
		var c int
		switch pos := r.pos; {
		case pos < headLen:
			c = copy(p[n:], r.head[pos:])
		case pos < headLen+r.body:
			rel := pos - headLen
			i := rel / int64(hashLineLen)
			line, end := r.hashLine(int(i))
			c = copy(p[n:], line[rel%int64(hashLineLen):end])
		default:
			c = copy(p[n:], r.tail[pos-headLen-r.body:])
		}
		n += c
		r.pos += int64(c)
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// hashLine renders line i of the sha256s list and its length.
func (r *EncodedReader) hashLine(i int) ([hashLineLen]byte, int) {
	var line [hashLineLen]byte
	copy(line[:], hashIndent)
	line[4] = '"'
	hex.Encode(line[5:69], r.m.Hashes[i][:])
	line[69] = '"'
	if i == len(r.m.Hashes)-1 {
		line[70] = '\n'
		return line, hashLineLen - 1
	}
	line[70] = ','
	line[71] = '\n'
	return line, hashLineLen
}
