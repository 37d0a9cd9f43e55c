#include "st_write.h"

#include "../vae_io/out_file.h"
#include "error.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char *st_dtype(enum dtype dt)
{
    switch (dt) {
    case DT_F32: return "F32";
    case DT_F16: return "F16";
    case DT_BF16: return "BF16";
    case DT_F64: return "F64";
    case DT_I64: return "I64";
    case DT_I32: return "I32";
    case DT_U8: return "U8";
    default: return NULL;
    }
}

static int build_header(const st_named *v, int n, const char *const *metadata, char **out,
                        size_t *len)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return err_set(REEL_E_NOMEM, "safetensors header");
    if (metadata && metadata[0]) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; meta && metadata[i] && metadata[i + 1]; i += 2)
            cJSON_AddStringToObject(meta, metadata[i], metadata[i + 1]);
    }
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const tensor *t = v[i].t;
        const char *dt = st_dtype(t->dtype);
        if (!dt || t->dev != DEV_CPU || !tensor_is_contiguous(t)) {
            cJSON_Delete(root);
            return err_set(REEL_E_INVALID, "tensor '%s': only contiguous host tensors of "
                           "f32/f16/bf16/f64/i64/i32/u8 can be written (got %s)", v[i].name,
                           dtype_name(t->dtype));
        }
        cJSON *e = cJSON_AddObjectToObject(root, v[i].name);
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddStringToObject(e, "dtype", dt);
        for (int d = 0; shape && d < t->ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        uint64_t end = offset + tensor_nbytes(t);
        if (offs) {
            cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
            cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)end));
        }
        offset = end;
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text)
        return err_set(REEL_E_NOMEM, "safetensors header");
    /* pad with spaces so the data section starts 8-byte aligned, as the reference writer does */
    size_t l = strlen(text), padded = (l + 7) & ~(size_t)7;
    char *buf = malloc(padded + 1);
    if (!buf) {
        cJSON_free(text);
        return err_set(REEL_E_NOMEM, "safetensors header");
    }
    memcpy(buf, text, l);
    memset(buf + l, ' ', padded - l);
    buf[padded] = 0;
    cJSON_free(text);
    *out = buf;
    *len = padded;
    return REEL_OK;
}

int st_write_file(const char *path, const st_named *v, int n, const char *const *metadata,
                  int overwrite)
{
    char *header = NULL;
    size_t hlen = 0;
    TRY(build_header(v, n, metadata, &header, &hlen));
    out_file *f;
    int st = out_file_open(path, overwrite, &f);
    if (st < 0) {
        free(header);
        return st;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    st = out_file_write(f, len8, 8);
    if (st >= 0)
        st = out_file_write(f, header, hlen);
    for (int i = 0; st >= 0 && i < n; i++)
        st = out_file_write(f, v[i].t->data, tensor_nbytes(v[i].t));
    free(header);
    if (st < 0) {
        out_file_discard(f);
        return st;
    }
    return out_file_commit(f);
}
