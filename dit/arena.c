#include "arena.h"

#include "error.h"

int arena_init(arena *a, backend *be, size_t cap, const char *name)
{
    a->be = be;
    a->cap = cap;
    a->used = a->peak = 0;
    a->name = name;
    a->base = NULL;
    int st = be->ops->alloc(be, cap, (void **)&a->base);
    if (st < 0)
        return err_wrap(st, "%s arena of %.1f MiB", name, (double)cap / (1 << 20));
    return REEL_OK;
}

void arena_release(arena *a)
{
    if (a->base)
        a->be->ops->free(a->be, a->base);
    a->base = NULL;
    a->cap = a->used = 0;
}

int arena_alloc(arena *a, size_t bytes, void **ptr)
{
    size_t start = (a->used + 255) & ~(size_t)255;
    if (start > a->cap || bytes > a->cap - start)
        return err_set(a->be->dev == DEV_CUDA ? REEL_E_DEVICE : REEL_E_NOMEM,
                       "%s arena: %zu bytes requested with %zu of %zu in use", a->name, bytes,
                       a->used, a->cap);
    *ptr = a->base + start;
    a->used = start + bytes;
    if (a->used > a->peak)
        a->peak = a->used;
    return REEL_OK;
}

int arena_tensor(arena *a, enum dtype dt, int ndim, const int64_t *shape, tensor *out)
{
    *out = tensor_make(NULL, dt, a->be->dev, ndim, shape);
    return arena_alloc(a, tensor_nbytes(out), &out->data);
}
