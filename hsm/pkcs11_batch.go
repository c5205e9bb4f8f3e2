//go:build cgo

package hsm

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

// The few PKCS#11 (v2.40) types this file needs, declared here so that the
// package does not depend on a header's location. On Unix the standard's
// structures have natural alignment and CK_ULONG is unsigned long.
typedef unsigned long ck_ulong;
typedef struct { unsigned char major, minor; } ck_version;
typedef struct { ck_ulong mechanism; void *parameter; ck_ulong parameter_len; } ck_mechanism;
typedef struct {
	unsigned char *iv; ck_ulong iv_len; ck_ulong iv_bits;
	unsigned char *aad; ck_ulong aad_len; ck_ulong tag_bits;
} ck_gcm_params;
typedef ck_ulong (*ck_decrypt_init)(ck_ulong session, ck_mechanism *mech, ck_ulong key);
typedef ck_ulong (*ck_decrypt)(ck_ulong session, unsigned char *in, ck_ulong in_len, unsigned char *out, ck_ulong *out_len);

// CK_FUNCTION_LIST: a version, then the functions in the standard's order;
// C_DecryptInit and C_Decrypt are the 34th and 35th.
typedef struct { ck_version version; void *fn[68]; } ck_function_list;
typedef ck_ulong (*ck_get_function_list)(ck_function_list **list);

enum { fn_decrypt_init = 33, fn_decrypt = 34 };

// coffer_p11_functions returns the function list of the module at path,
// which the process has loaded and initialized already (dlopen hands back
// the same instance), or NULL.
static ck_function_list *coffer_p11_functions(const char *path) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) return NULL;
	ck_get_function_list get = (ck_get_function_list)dlsym(h, "C_GetFunctionList");
	ck_function_list *list = NULL;
	if (get == NULL || get(&list) != 0) return NULL;
	return list;
}

// One AES-GCM decryption of a batch. The caller lays out iv (12 bytes),
// aad, in and out in C memory; rv and out_len come back.
typedef struct {
	unsigned char *iv, *aad, *in, *out;
	ck_ulong aad_len, in_len, out_len, rv;
} coffer_gcm_item;

// coffer_gcm_decrypt_batch runs every item back to back in one session:
// one trip from Go into the module for the whole batch.
static void coffer_gcm_decrypt_batch(ck_function_list *f, ck_ulong session, ck_ulong key, coffer_gcm_item *items, int n) {
	ck_decrypt_init init = (ck_decrypt_init)f->fn[fn_decrypt_init];
	ck_decrypt decrypt = (ck_decrypt)f->fn[fn_decrypt];
	for (int i = 0; i < n; i++) {
		coffer_gcm_item *it = &items[i];
		ck_gcm_params p = { it->iv, 12, 96, it->aad, it->aad_len, 128 };
		ck_mechanism m = { 0x1087, &p, sizeof p }; // CKM_AES_GCM
		it->rv = init(session, &m, key);
		if (it->rv != 0) continue;
		ck_ulong out_len = it->in_len;
		it->rv = decrypt(session, it->in, it->in_len, it->out, &out_len);
		it->out_len = out_len;
	}
}

static void coffer_zero(void *p, size_t n) { explicit_bzero(p, n); }
*/
import "C"

import (
	"context"
	"sync"
	"unsafe"

	"github.com/miekg/pkcs11"
)

// functions caches each module's function list by path.
var functions sync.Map // string → *C.ck_function_list

func (m *module) functionList() *C.ck_function_list {
	if f, ok := functions.Load(m.path); ok {
		return f.(*C.ck_function_list)
	}
	cpath := C.CString(m.path)
	defer C.free(unsafe.Pointer(cpath))
	f := C.coffer_p11_functions(cpath)
	if f != nil {
		functions.Store(m.path, f)
	}
	return f
}

// maxBatchBytes bounds the C memory one batch lays out; larger batches are
// split.
const maxBatchBytes = 1 << 20

// unwrapBatch implements batchUnwrapper: the blobs are decrypted under the
// root key in one call into the module, into C memory that is zeroed as
// soon as each plaintext is copied out (miekg/pkcs11's Decrypt frees its
// buffer without zeroing it). Any item the token does not answer cleanly —
// a forged blob, a lost session — is run again alone through Unwrap, whose
// reconnection and error rules then apply, so a batch never answers
// differently from the same calls made one by one.
func (s *p11Session) unwrapBatch(ctx context.Context, wrapped, aads [][]byte) ([][]byte, []error) {
	outs, errs := make([][]byte, len(wrapped)), make([]error, len(wrapped))
	retry := func(i int) { outs[i], errs[i] = s.Unwrap(ctx, wrapped[i], aads[i]) }
	var idx []int // items that go to the token in this batch
	for i, w := range wrapped {
		if len(w) < blobOverhead || w[0] != wrapVersionPKCS11 {
			errs[i] = ErrUnwrap
			continue
		}
		idx = append(idx, i)
	}
	done := false
	if len(idx) > 0 {
		done = s.decryptBatch(wrapped, aads, idx, outs)
	}
	for _, i := range idx {
		if !done || outs[i] == nil {
			retry(i)
		}
	}
	return outs, errs
}

// decryptBatch decrypts the items idx of wrapped in one module call and
// stores the plaintext of each that succeeded in outs. It reports false,
// having done nothing, when the batch cannot be run (no session, no root
// key handle, no function list): the caller then runs each item alone.
func (s *p11Session) decryptBatch(wrapped, aads [][]byte, idx []int, outs [][]byte) bool {
	if err := s.b.enter(); err != nil {
		return false
	}
	defer s.b.life.RUnlock()
	b := s.b
	if !s.open || b.down.Load() != nil || s.gen != b.gen.Load() || s.epoch != b.mod.epoch.Load() {
		return false // Unwrap fails fast or reopens the session first
	}
	key, err := s.rootKey()
	if err != nil {
		return false
	}
	f := s.b.mod.functionList()
	if f == nil {
		return false
	}
	for len(idx) > 0 {
		n, size := 0, 0
		for n < len(idx) {
			w := wrapped[idx[n]]
			need := gcmNonceSize + len(aads[idx[n]]) + 2*len(w)
			if n > 0 && size+need > maxBatchBytes {
				break
			}
			size += need
			n++
		}
		s.decryptChunk(f, key, wrapped, aads, idx[:n], outs, size)
		idx = idx[n:]
	}
	return true
}

// decryptOne runs one CKM_AES_GCM decryption through the module's
// function list into zeroed-after C memory; errors are the token's return
// values as pkcs11.Error, as miekg/pkcs11 reports them. ok is false when
// the module has no function list to call (the caller then uses miekg's).
func (s *p11Session) decryptOne(key pkcs11.ObjectHandle, iv, aad, in []byte) (pt []byte, ok bool, err error) {
	f := s.b.mod.functionList()
	if f == nil {
		return nil, false, nil
	}
	blob := make([]byte, 0, 1+len(iv)+len(in))
	blob = append(append(append(blob, wrapVersionPKCS11), iv...), in...)
	outs := make([][]byte, 1)
	rv := s.decryptChunk(f, key, [][]byte{blob}, [][]byte{aad}, []int{0}, outs, len(iv)+len(aad)+2*len(blob))
	if outs[0] == nil {
		if rv[0] == 0 { // a token that returned a plaintext of the wrong length
			rv[0] = pkcs11.CKR_ENCRYPTED_DATA_INVALID
		}
		return nil, true, pkcs11.Error(rv[0])
	}
	return outs[0], true, nil
}

// decryptChunk lays out the items idx in C memory, runs them in one module
// call and returns each item's return value.
func (s *p11Session) decryptChunk(f *C.ck_function_list, key pkcs11.ObjectHandle, wrapped, aads [][]byte, idx []int, outs [][]byte, size int) []uint {
	items := (*C.coffer_gcm_item)(C.calloc(C.size_t(len(idx)), C.size_t(unsafe.Sizeof(C.coffer_gcm_item{}))))
	buf := (*byte)(C.malloc(C.size_t(size)))
	defer C.free(unsafe.Pointer(items))
	defer C.free(unsafe.Pointer(buf))
	defer C.coffer_zero(unsafe.Pointer(buf), C.size_t(size))
	its := unsafe.Slice(items, len(idx))
	mem := unsafe.Slice(buf, size)
	off := 0
	place := func(b []byte) *C.uchar {
		p := (*C.uchar)(unsafe.Pointer(&mem[off]))
		off += copy(mem[off:], b)
		return p
	}
	for k, i := range idx {
		w := wrapped[i]
		body := w[1+gcmNonceSize:]
		its[k].iv = place(w[1 : 1+gcmNonceSize])
		its[k].aad, its[k].aad_len = place(aads[i]), C.ck_ulong(len(aads[i]))
		its[k].in, its[k].in_len = place(body), C.ck_ulong(len(body))
		its[k].out = (*C.uchar)(unsafe.Pointer(&mem[off]))
		off += len(body)
	}
	C.coffer_gcm_decrypt_batch(f, C.ck_ulong(s.sh), C.ck_ulong(key), items, C.int(len(idx)))
	rvs := make([]uint, len(idx))
	for k, i := range idx {
		rvs[k] = uint(its[k].rv)
		want := len(wrapped[i]) - blobOverhead
		if its[k].rv != 0 || int(its[k].out_len) != want {
			continue
		}
		pt := make([]byte, want)
		copy(pt, unsafe.Slice((*byte)(unsafe.Pointer(its[k].out)), want))
		outs[i] = pt
	}
	return rvs
}
