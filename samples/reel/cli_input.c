/* Input tensors of the tensor-in/tensor-out tools (reel dit, reel vae): one named float tensor
 * of a safetensors file, whatever float dtype it is stored in, as contiguous f32 host memory. */
#include "cli.h"

#include "dit/error.h"
#include "dit/weights.h"

#include <stdlib.h>

int cli_read_f32(const weights *ws, const char *cmd, const char *name, float **data, tensor *t)
{
    const weight_entry *e = weights_find(ws, name);
    if (!e)
        return err_set(REEL_E_NOT_FOUND, "%s: no tensor '%s' (see reel %s --help)",
                       weights_path(ws), name, cmd);
    if (!dtype_is_float(e->t.dtype))
        return err_set(REEL_E_INVALID, "%s: '%s' is %s, expected a float tensor", weights_path(ws),
                       name, dtype_name(e->t.dtype));
    size_t n = (size_t)tensor_numel(&e->t);
    *data = malloc((n ? n : 1) * sizeof(float));
    if (!*data)
        return err_set(REEL_E_NOMEM, "reading '%s'", name);
    TRY(weights_read_f32(e, *data));
    *t = tensor_make(*data, DT_F32, DEV_CPU, e->t.ndim, e->t.shape);
    return REEL_OK;
}
