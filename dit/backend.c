#include "backend.h"

#include "error.h"

#include <stdlib.h>
#include <string.h>

int backend_create_by_name(const char *name, backend **out)
{
    if (strcmp(name, "cpu") == 0)
        return backend_cpu_create(0, out);
    if (strcmp(name, "cuda") == 0)
        return backend_cuda_create(0, out);
    if (strncmp(name, "cuda:", 5) == 0) {
        char *end;
        long idx = strtol(name + 5, &end, 10);
        if (*end || idx < 0 || idx > 255)
            return err_set(REEL_E_INVALID, "backend '%s': expected cuda:N with N a device index",
                           name);
        return backend_cuda_create((int)idx, out);
    }
    return err_set(REEL_E_INVALID, "unknown backend '%s' (expected cpu, cuda or cuda:N)", name);
}

int backend_tensor_alloc(backend *be, enum dtype dt, int ndim, const int64_t *shape, tensor *out)
{
    *out = tensor_make(NULL, dt, be->dev, ndim, shape);
    return be->ops->alloc(be, tensor_nbytes(out), &out->data);
}

void backend_tensor_free(backend *be, tensor *t)
{
    if (t->data)
        be->ops->free(be, t->data);
    t->data = NULL;
}

void backend_free(backend *be)
{
    if (be)
        be->ops->destroy(be);
}

#ifndef REEL_HAVE_CUDA
int backend_cuda_create(int device_index, backend **out)
{
    (void)device_index;
    *out = NULL;
    return err_set(REEL_E_UNSUPPORTED, "this reel was built without CUDA (REEL_CUDA=OFF)");
}
#endif
