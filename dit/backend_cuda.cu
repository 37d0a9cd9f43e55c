/* The CUDA backend: activations in bf16 or f32 on one device, fp32 arithmetic inside every
 * kernel, GEMMs through cuBLASLt. All work is queued on one stream per backend; copies to and
 * from the host go through pinned staging buffers (cuda_copy.cu). Each op is checked against
 * the CPU backend by tests/gpu/test_ops_cuda.c. */
#include "cuda_ops.h"

#include <stdlib.h>

int cuda_enter(backend *be)
{
    CUDA_TRY(cudaSetDevice(be->device_index));
    return REEL_OK;
}

unsigned cuda_grid(backend *be, int64_t n, int block)
{
    int64_t blocks = (n + block - 1) / block;
    int64_t cap = (int64_t)cuda_impl_of(be)->sm_count * 32; /* grid-stride loops do the rest */
    if (blocks > cap)
        blocks = cap;
    return blocks > 0 ? (unsigned)blocks : 1u;
}

int cuda_row_grid(const char *op, int64_t rows, unsigned *grid)
{
    if (rows > 0x7fffffff)
        return err_set(REEL_E_INVALID, "%s: %lld rows exceed one launch (2^31 - 1)", op,
                       (long long)rows);
    *grid = (unsigned)rows;
    return REEL_OK;
}

/* Names the failed request and what the device had left. */
static int oom(const char *what, size_t bytes, cudaError_t e)
{
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    cudaGetLastError(); /* an allocation failure is not sticky: clear it */
    return err_set(REEL_E_DEVICE, "%s: cannot allocate %zu bytes on the GPU (%s; %.1f of %.1f GiB free)",
                   what, bytes, cudaGetErrorString(e), free_b / 1073741824.0, total_b / 1073741824.0);
}

static int cuda_alloc(backend *be, size_t bytes, void **ptr)
{
    *ptr = NULL;
    if (bytes == 0)
        return REEL_OK;
    TRY(cuda_enter(be));
    cudaError_t e = cudaMalloc(ptr, bytes);
    if (e != cudaSuccess) {
        *ptr = NULL;
        return oom("cuda alloc", bytes, e);
    }
    return REEL_OK;
}

static void cuda_free(backend *be, void *ptr)
{
    /* nothing to report to: a failing free means the context is already broken, and the next
     * checked call says so */
    if (ptr && cuda_enter(be) == REEL_OK)
        cudaFree(ptr);
}

int cuda_scratch_alloc(backend *be, size_t bytes, void **ptr, const char *what)
{
    *ptr = NULL;
    if (bytes == 0)
        return REEL_OK;
    cudaError_t e = cudaMallocAsync(ptr, bytes, cuda_stream(be));
    if (e != cudaSuccess) {
        *ptr = NULL;
        return oom(what, bytes, e);
    }
    return REEL_OK;
}

int cuda_scratch_free(backend *be, void *ptr)
{
    if (ptr)
        CUDA_TRY(cudaFreeAsync(ptr, cuda_stream(be)));
    return REEL_OK;
}

static int cuda_sync(backend *be)
{
    TRY(cuda_enter(be));
    CUDA_TRY(cudaStreamSynchronize(cuda_stream(be)));
    return REEL_OK;
}

static void cuda_destroy(backend *be)
{
    cuda_impl *impl = cuda_impl_of(be);
    if (impl) {
        cudaSetDevice(be->device_index);
        if (impl->stream) {
            cuda_rope_tables_release(impl);
            cudaStreamSynchronize(impl->stream);
        }
        cuda_gemm_plans_release(impl);
        cuda_staging_release(impl);
        if (impl->workspace)
            cudaFree(impl->workspace);
        if (impl->lt)
            cublasLtDestroy(impl->lt);
        if (impl->stream)
            cudaStreamDestroy(impl->stream);
        free(impl);
    }
    free(be);
}

static int cuda_mem_info(backend *be, size_t *free_bytes, size_t *total_bytes)
{
    TRY(cuda_enter(be));
    CUDA_TRY(cudaMemGetInfo(free_bytes, total_bytes));
    return REEL_OK;
}

/* Filled field by field: C++17 has no designated initialisers, and positions would silently
 * shift when backend_ops grows. */
static backend_ops make_ops()
{
    backend_ops o = {};
    o.name = "cuda";
    o.destroy = cuda_destroy;
    o.alloc = cuda_alloc;
    o.free = cuda_free;
    o.copy = cuda_copy;
    o.fill = cuda_fill;
    o.sync = cuda_sync;
    o.mem_info = cuda_mem_info;
    o.gemm = cuda_gemm;
    o.layer_norm = cuda_layer_norm;
    o.rms_norm = cuda_rms_norm;
    o.rope3d = cuda_rope3d;
    o.add_gated = cuda_add_gated;
    o.add_gated_norm = cuda_add_gated_norm;
    o.modulate = cuda_modulate;
    o.gelu_tanh = cuda_gelu_tanh;
    o.silu = cuda_silu;
    o.softmax = cuda_softmax;
    o.patch_embed = cuda_patch_embed;
    o.unpatchify = cuda_unpatchify;
    o.lincomb = cuda_lincomb;
    return o;
}

static const backend_ops cuda_backend_ops = make_ops();

static int cuda_init(backend *be)
{
    cuda_impl *impl = cuda_impl_of(be);
    TRY(cuda_enter(be));
    CUDA_TRY(cudaDeviceGetAttribute(&impl->sm_count, cudaDevAttrMultiProcessorCount,
                                    be->device_index));
    CUDA_TRY(cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking));
    be->stream = impl->stream;
    CUBLAS_TRY(cublasLtCreate(&impl->lt));
    cudaError_t e = cudaMalloc(&impl->workspace, CUDA_GEMM_WORKSPACE);
    if (e != cudaSuccess) {
        impl->workspace = NULL;
        return oom("cuda backend: GEMM workspace", CUDA_GEMM_WORKSPACE, e);
    }
    /* scratch (im2col, RoPE tables) comes from the stream-ordered pool: keep freed blocks in
     * the pool instead of returning them to the driver at every synchronisation */
    cudaMemPool_t pool;
    CUDA_TRY(cudaDeviceGetDefaultMemPool(&pool, be->device_index));
    uint64_t keep = UINT64_MAX;
    CUDA_TRY(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    return REEL_OK;
}

extern "C" int backend_cuda_create(int device_index, backend **out)
{
    *out = NULL;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError();
        return err_set(REEL_E_UNSUPPORTED, "no CUDA device: %s",
                       e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports 0 devices");
    }
    if (device_index < 0 || device_index >= count)
        return err_set(REEL_E_INVALID, "CUDA device %d requested, %d present", device_index, count);
    backend *be = (backend *)calloc(1, sizeof *be);
    cuda_impl *impl = (cuda_impl *)calloc(1, sizeof *impl);
    if (!be || !impl) {
        free(be);
        free(impl);
        return err_set(REEL_E_NOMEM, "cuda backend: out of host memory");
    }
    be->ops = &cuda_backend_ops;
    be->dev = DEV_CUDA;
    be->threads = 1;
    be->device_index = device_index;
    be->impl = impl;
    int st = cuda_init(be);
    if (st < 0) {
        cuda_destroy(be);
        return st;
    }
    *out = be;
    return REEL_OK;
}
