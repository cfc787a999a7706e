package compress

// noneCodec is Cinder's "none" (also "off" and "no"): objects stored raw.
type noneCodec struct{}

func (noneCodec) Name() string { return "none" }

// Compress never compresses: the caller stores src raw.
func (noneCodec) Compress(dst, src []byte) ([]byte, bool, error) {
	return dst[:0], false, nil
}

// Decompress copies src, which must be exactly size bytes long.
func (noneCodec) Decompress(dst, src []byte, size int) ([]byte, error) {
	if err := checkSize("none", size); err != nil {
		return dst[:0], err
	}
	if len(src) != size {
		return dst[:0], corrupt("none", "object is %d bytes, expected %d", len(src), size)
	}
	out := outBuf(dst, size)
	copy(out, src)
	return out, nil
}
