#include "tensor.h"

#include "error.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
    bool is_float;
} dtype_info[DT_COUNT] = {
    [DT_F32] = {"f32", 4, true},     [DT_F16] = {"f16", 2, true},
    [DT_BF16] = {"bf16", 2, true},   [DT_F8_E4M3] = {"f8_e4m3", 1, true},
    [DT_F8_E5M2] = {"f8_e5m2", 1, true}, [DT_F64] = {"f64", 8, true},
    [DT_I64] = {"i64", 8, false},    [DT_I32] = {"i32", 4, false},
    [DT_I16] = {"i16", 2, false},    [DT_I8] = {"i8", 1, false},
    [DT_U8] = {"u8", 1, false},      [DT_BOOL] = {"bool", 1, false},
};

size_t dtype_size(enum dtype dt) { return (unsigned)dt < DT_COUNT ? dtype_info[dt].size : 0; }

const char *dtype_name(enum dtype dt) { return (unsigned)dt < DT_COUNT ? dtype_info[dt].name : "?"; }

bool dtype_is_float(enum dtype dt) { return (unsigned)dt < DT_COUNT && dtype_info[dt].is_float; }

tensor tensor_make(void *data, enum dtype dt, enum device dev, int ndim, const int64_t *shape)
{
    tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dt;
    t.dev = dev;
    t.ndim = ndim;
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        t.shape[i] = shape[i];
        t.stride[i] = s;
        s *= shape[i];
    }
    return t;
}

tensor tensor_2d(void *data, enum dtype dt, enum device dev, int64_t rows, int64_t cols)
{
    int64_t shape[2] = {rows, cols};
    return tensor_make(data, dt, dev, 2, shape);
}

tensor tensor_1d(void *data, enum dtype dt, enum device dev, int64_t n)
{
    return tensor_make(data, dt, dev, 1, &n);
}

int64_t tensor_numel(const tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

size_t tensor_nbytes(const tensor *t) { return (size_t)tensor_numel(t) * dtype_size(t->dtype); }

bool tensor_is_contiguous(const tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s)
            return false;
        s *= t->shape[i];
    }
    return true;
}

bool tensor_same_shape(const tensor *a, const tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

int64_t tensor_rows(const tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i + 1 < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

int64_t tensor_row_stride(const tensor *t)
{
    if (t->ndim == 0)
        return 1;
    int last = t->ndim - 1;
    if (t->shape[last] != 1 && t->stride[last] != 1)
        return -1;
    /* Rows are evenly spaced when the outer dims collapse into one: each non-unit outer dim
     * steps over exactly the non-unit outer dim inside it. */
    int64_t row_stride = -1, inner_step = 0;
    for (int i = last - 1; i >= 0; i--) {
        if (t->shape[i] == 1)
            continue;
        if (row_stride < 0)
            row_stride = t->stride[i];
        else if (t->stride[i] != inner_step)
            return -1;
        inner_step = t->stride[i] * t->shape[i];
    }
    return row_stride < 0 ? t->shape[last] : row_stride;
}

tensor tensor_slice(const tensor *t, int dim, int64_t start, int64_t len)
{
    tensor r = *t;
    r.shape[dim] = len;
    r.data = (char *)t->data + (size_t)(start * t->stride[dim]) * dtype_size(t->dtype);
    return r;
}

int tensor_reshape(const tensor *t, int ndim, const int64_t *shape, tensor *out)
{
    char buf[96];
    if (!tensor_is_contiguous(t))
        return err_set(REEL_E_INVALID, "reshape of a non-contiguous tensor %s",
                       tensor_shape_str(t, buf, sizeof buf));
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    if (n != tensor_numel(t) || ndim > TENSOR_MAX_DIMS)
        return err_set(REEL_E_INVALID, "reshape of %s to %d dims with %lld elements",
                       tensor_shape_str(t, buf, sizeof buf), ndim, (long long)n);
    *out = tensor_make(t->data, t->dtype, t->dev, ndim, shape);
    return REEL_OK;
}

const char *tensor_shape_str(const tensor *t, char *buf, size_t n)
{
    size_t used = 0;
    used += (size_t)snprintf(buf + used, n - used, "[");
    for (int i = 0; i < t->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (used < n)
        snprintf(buf + used, n - used, "]");
    return buf;
}

int tensor_expect(const tensor *t, const char *what, enum dtype dt, int ndim, const int64_t *shape)
{
    char got[96];
    bool ok = t->ndim == ndim && (dt == DT_COUNT || t->dtype == dt);
    for (int i = 0; ok && i < ndim; i++)
        ok = shape[i] < 0 || shape[i] == t->shape[i];
    if (ok)
        return REEL_OK;
    char want[96];
    size_t used = (size_t)snprintf(want, sizeof want, "[");
    for (int i = 0; i < ndim && used < sizeof want; i++) {
        if (shape[i] < 0)
            used += (size_t)snprintf(want + used, sizeof want - used, i ? ", *" : "*");
        else
            used += (size_t)snprintf(want + used, sizeof want - used, i ? ", %lld" : "%lld",
                                     (long long)shape[i]);
    }
    if (used < sizeof want)
        snprintf(want + used, sizeof want - used, "]");
    return err_set(REEL_E_INVALID, "%s: expected %s %s, got %s %s", what,
                   dt == DT_COUNT ? "" : dtype_name(dt), want, dtype_name(t->dtype),
                   tensor_shape_str(t, got, sizeof got));
}
