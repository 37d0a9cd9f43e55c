/* Stand-ins for t5_cuda.cu in a build without CUDA: no CUDA backend exists there, so these are
 * reached only through a programming error, and say so. */
#include "t5_internal.h"

#include "error.h"

static int t5_no_cuda(const char *what)
{
    return err_set(REEL_E_UNSUPPORTED, "%s: this reel was built without CUDA (REEL_CUDA=OFF)",
                   what);
}

int t5_cuda_open(backend *be, void **state)
{
    *state = NULL;
    return t5_no_cuda("t5_cuda_open");
}

void t5_cuda_close(void *state) {}

int t5_cuda_attention(void *state, backend *be, const tensor *qkv, const tensor *bias, int heads,
                      int n_valid, tensor *scores, tensor *probs, tensor *out)
{
    return t5_no_cuda("t5_attention");
}

int t5_cuda_gated_gelu(backend *be, const tensor *g, tensor *out)
{
    return t5_no_cuda("t5_gated_gelu");
}
