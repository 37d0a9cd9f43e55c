/* Without CUDA the VAE runs on the CPU executor only. */
#include "vae_internal.h"

#include "dit/error.h"

int vae_exec_cuda_create(backend *be, vae_exec **out)
{
    *out = NULL;
    return err_set(REEL_E_UNSUPPORTED, "vae: this reel was built without CUDA (REEL_CUDA=OFF)");
}
