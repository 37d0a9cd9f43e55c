/* libFuzzer harness: the restricted unpickler on arbitrary bytes. The value graph it returns
 * must only reference values that exist, tensors only storages. */
#include "dit/pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pk_doc doc;
    if (pk_load("fuzz/data.pkl", data, size, &doc) == 0) {
        if (doc.root < 0 || doc.root >= doc.n)
            __builtin_trap();
        for (int i = 0; i < doc.n; i++) {
            const pk_value *v = &doc.v[i];
            if ((v->kind == PK_TUPLE || v->kind == PK_LIST || v->kind == PK_DICT))
                for (int k = 0; k < v->u.seq.n; k++)
                    if (v->u.seq.items[k] < 0 || v->u.seq.items[k] >= doc.n)
                        __builtin_trap();
            if (v->kind == PK_TENSOR && doc.v[v->u.tensor.storage].kind != PK_STORAGE)
                __builtin_trap();
        }
        pk_free(&doc);
    }
    return 0;
}
