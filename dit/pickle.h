/* A restricted unpickler for the data.pkl of a PyTorch zip checkpoint.
 *
 * It evaluates nothing: it understands exactly the opcodes that Python's pickler emits for a
 * (nested) dict of tensors at protocols 2 to 5, and knows five callables by name, which it
 * interprets itself instead of calling:
 *   collections.OrderedDict()                       -> an empty dict
 *   torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, meta])
 *   torch._utils._rebuild_parameter(tensor, requires_grad, hooks) -> the tensor
 *   torch.<Type>Storage, only inside a persistent id ('storage', type, key, location, numel)
 *   BUILD on a dict (the state_dict's _metadata), ignored.
 * Any other opcode or global (os.system, builtins.eval, INST/OBJ/NEWOBJ, EXT*) is refused with a
 * message naming it. Every count is bounded: stack, marks, memo indices, objects. The result is
 * a graph of values; containers can share or even contain each other (the memo allows it), so
 * whoever walks it must bound its depth. */
#ifndef REEL_PICKLE_H
#define REEL_PICKLE_H

#include "tensor.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PK_MAX_VALUES (1 << 22)
#define PK_MAX_MARKS 4096

enum pk_kind {
    PK_NONE,
    PK_BOOL,
    PK_INT,
    PK_FLOAT,
    PK_STR,
    PK_TUPLE,
    PK_LIST,
    PK_DICT,    /* items hold key, value, key, value ... in insertion order */
    PK_GLOBAL,  /* one of the known callables or storage types */
    PK_STORAGE, /* a persistent id: where the bytes of a tensor live */
    PK_TENSOR
};

enum pk_global { PKG_ORDERED_DICT, PKG_REBUILD_TENSOR_V2, PKG_REBUILD_PARAMETER, PKG_STORAGE_TYPE };

typedef struct pk_value {
    enum pk_kind kind;
    union {
        int64_t i; /* PK_INT, PK_BOOL */
        double f;
        struct {
            const char *s; /* points into the pickle bytes; not NUL-terminated */
            uint32_t len;
        } str;
        struct {
            int *items;
            int n, cap;
        } seq; /* PK_TUPLE, PK_LIST, PK_DICT */
        struct {
            enum pk_global g;
            enum dtype dtype; /* PKG_STORAGE_TYPE */
        } global;
        struct {
            enum dtype dtype;
            const char *key; /* the record name under <archive>/data/ */
            uint32_t key_len;
            int64_t numel;
        } storage;
        struct {
            int storage; /* value index of a PK_STORAGE */
            int64_t offset;
            int ndim;
            int64_t shape[TENSOR_MAX_DIMS];
            int64_t stride[TENSOR_MAX_DIMS];
        } tensor;
    } u;
} pk_value;

typedef struct pk_doc {
    pk_value *v;
    int n, cap;
    int root; /* the value STOP returned */
} pk_doc;

/* Unpickles data[0..len). `where` prefixes every message ("model.pth: archive/data.pkl"). */
int pk_load(const char *where, const uint8_t *data, size_t len, pk_doc *out);
void pk_free(pk_doc *doc);

#ifdef __cplusplus
}
#endif
#endif
