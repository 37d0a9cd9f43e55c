/* Tensor views: a pointer with dtype, device, shape and strides. A view never owns memory;
 * memory belongs to an arena, a weight file mapping, or whoever allocated it (see arena.h).
 * Shapes are written outermost first, as PyTorch prints them; strides count elements. */
#ifndef REEL_TENSOR_H
#define REEL_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TENSOR_MAX_DIMS 5

enum dtype {
    DT_F32,
    DT_F16,
    DT_BF16,
    DT_F8_E4M3,
    DT_F8_E5M2,
    DT_F64,
    DT_I64,
    DT_I32,
    DT_I16,
    DT_I8,
    DT_U8,
    DT_BOOL,
    DT_COUNT
};

enum device { DEV_CPU, DEV_CUDA };

typedef struct tensor {
    void *data;
    enum dtype dtype;
    enum device dev;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    int64_t stride[TENSOR_MAX_DIMS];
} tensor;

size_t dtype_size(enum dtype dt);
const char *dtype_name(enum dtype dt); /* "f32", "bf16", ... */
bool dtype_is_float(enum dtype dt);

/* A contiguous view of ndim dims over data. */
tensor tensor_make(void *data, enum dtype dt, enum device dev, int ndim, const int64_t *shape);
tensor tensor_2d(void *data, enum dtype dt, enum device dev, int64_t rows, int64_t cols);
tensor tensor_1d(void *data, enum dtype dt, enum device dev, int64_t n);

int64_t tensor_numel(const tensor *t);
size_t tensor_nbytes(const tensor *t); /* numel × element size; meaningful for contiguous views */
bool tensor_is_contiguous(const tensor *t);
bool tensor_same_shape(const tensor *a, const tensor *b);

/* Rows of a tensor: everything but the innermost dim counts as a row. Ops that work row by row
 * accept any view whose innermost dim is contiguous and whose rows are evenly spaced. */
int64_t tensor_rows(const tensor *t);
int64_t tensor_row_stride(const tensor *t); /* elements between rows; -1 when not evenly spaced */

/* Sub-range [start, start+len) of dimension dim; shares memory. */
tensor tensor_slice(const tensor *t, int dim, int64_t start, int64_t len);
/* Same memory, new shape; the view must be contiguous and the element counts equal. */
int tensor_reshape(const tensor *t, int ndim, const int64_t *shape, tensor *out);

/* "[16, 21, 60, 104]" into buf; returns buf. */
const char *tensor_shape_str(const tensor *t, char *buf, size_t n);

/* Checks dtype (DT_COUNT = any), rank and each dim (-1 = any); on mismatch sets a message
 * naming what, the expected and the actual shape, and returns REEL_E_INVALID. */
int tensor_expect(const tensor *t, const char *what, enum dtype dt, int ndim, const int64_t *shape);

#ifdef __cplusplus
}
#endif
#endif
