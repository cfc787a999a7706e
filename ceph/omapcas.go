//go:build ceph

package ceph

/*
#cgo LDFLAGS: -lrados
#include <stdlib.h>
#include <rados/librados.h>

// cb_omap_cas sets (val != NULL) or removes (val == NULL) the omap key of
// oid, in one atomic operation, only if the key's current value equals old
// (old_len 0: the key is absent). It returns -ECANCELED when the value
// differs. The object is created if missing, so that the comparison of an
// absent key with an empty value succeeds on a fresh index.
static int cb_omap_cas(rados_ioctx_t io, const char *oid, const char *key,
                       const char *old, size_t old_len,
                       const char *val, size_t val_len) {
	int cmp = 0;
	rados_write_op_t op = rados_create_write_op();
	rados_write_op_create(op, LIBRADOS_CREATE_IDEMPOTENT, NULL);
	rados_write_op_omap_cmp(op, key, LIBRADOS_CMPXATTR_OP_EQ, old, old_len, &cmp);
	if (val != NULL) {
		const char *keys[1] = {key};
		const char *vals[1] = {val};
		size_t lens[1] = {val_len};
		rados_write_op_omap_set(op, keys, vals, lens, 1);
	} else {
		const char *keys[1] = {key};
		rados_write_op_omap_rm_keys(op, keys, 1);
	}
	int r = rados_write_op_operate(op, io, oid, NULL, 0);
	rados_release_write_op(op);
	if (r == 0 && cmp < 0) {
		r = cmp;
	}
	return r;
}
*/
import "C"

import (
	"errors"
	"syscall"
	"unsafe"

	"github.com/ceph/go-ceph/rados"
)

// errChanged is returned by omapCAS when the key no longer holds the value
// the caller expected.
var errChanged = errors.New("the index entry changed meanwhile")

// omapCAS replaces the value old (nil: absent) of key in the omap of object
// oid with val (nil: remove the key), atomically. go-ceph has no binding for
// librados's omap comparison, which this needs, hence the few lines of C.
func omapCAS(ioctx *rados.IOContext, oid, key string, old, val []byte) error {
	cOid, cKey := C.CString(oid), C.CString(key)
	defer C.free(unsafe.Pointer(cOid))
	defer C.free(unsafe.Pointer(cKey))
	cOld := C.CBytes(append([]byte{0}, old...)) // never NULL, even when old is empty
	defer C.free(cOld)
	var cVal unsafe.Pointer
	if val != nil {
		cVal = C.CBytes(append([]byte{0}, val...))
		defer C.free(cVal)
	}
	valPtr := (*C.char)(nil)
	if cVal != nil {
		valPtr = (*C.char)(unsafe.Add(cVal, 1))
	}
	r := C.cb_omap_cas(C.rados_ioctx_t(ioctx.Pointer()), cOid, cKey,
		(*C.char)(unsafe.Add(cOld, 1)), C.size_t(len(old)), valPtr, C.size_t(len(val)))
	switch {
	case r == 0:
		return nil
	case -r == C.int(syscall.ECANCELED):
		return errChanged
	}
	return errnoError(int(r))
}
