/* Status checks for CUDA runtime and cuBLAS(Lt) calls: a failing call becomes REEL_E_DEVICE
 * with "file:line: call: error string" as the message, and the calling function returns it.
 *   CUDA_TRY(cudaMemcpyAsync(...));
 *   CUBLAS_TRY(cublasLtMatmul(...));
 *   kernel<<<grid, block, 0, stream>>>(...); CUDA_TRY_LAUNCH("layer_norm"); */
#ifndef REEL_CUDA_CHECK_H
#define REEL_CUDA_CHECK_H

#include "error.h"

#include <cublasLt.h> /* with cublas_api.h: cublasGetStatusString */
#include <cuda_runtime.h>

#define CUDA_TRY(call)                                                                      \
    do {                                                                                    \
        cudaError_t cuda_try_e_ = (call);                                                   \
        if (cuda_try_e_ != cudaSuccess)                                                     \
            return err_set(REEL_E_DEVICE, "%s:%d: %s: %s", __FILE__, __LINE__, #call,       \
                           cudaGetErrorString(cuda_try_e_));                                \
    } while (0)

#define CUBLAS_TRY(call)                                                                    \
    do {                                                                                    \
        cublasStatus_t cublas_try_s_ = (call);                                              \
        if (cublas_try_s_ != CUBLAS_STATUS_SUCCESS)                                         \
            return err_set(REEL_E_DEVICE, "%s:%d: %s: %s", __FILE__, __LINE__, #call,       \
                           cublasGetStatusString(cublas_try_s_));                           \
    } while (0)

/* After a kernel launch: reports a bad configuration or an earlier asynchronous fault. */
#define CUDA_TRY_LAUNCH(what)                                                               \
    do {                                                                                    \
        cudaError_t cuda_try_e_ = cudaGetLastError();                                       \
        if (cuda_try_e_ != cudaSuccess)                                                     \
            return err_set(REEL_E_DEVICE, "%s:%d: launching %s: %s", __FILE__, __LINE__,    \
                           what, cudaGetErrorString(cuda_try_e_));                          \
    } while (0)

#endif
