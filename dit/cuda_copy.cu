/* Copies between host and device with dtype conversion, and fill.
 *
 * Host -> device: the source's raw bytes go through two pinned staging buffers of 64 MiB
 * (double-buffered: the host fills one while the DMA engine drains the other, an event per
 * buffer says when it may be refilled), land in a raw device buffer and are converted there by
 * convert_kernel (f32/f16/bf16/f8/f64 -> f32/f16/bf16), so the host does no per-element work.
 * Device -> host: the reverse (convert on the device, DMA to pinned, memcpy out); it returns
 * with the data in place. Device -> device: cudaMemcpyAsync or one convert_kernel pass.
 * convert_kernel: grid-stride, one element per thread per step, memory-bound (reads n*src,
 * writes n*dst bytes). Reference: cpu_convert (dit/cpu_convert.c); test: tests/gpu/test_ops_cuda.c. */
#include "cuda_ops.h"
#include "cuda_vec.cuh"

#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <string.h>

#include "numeric.h"

extern "C" {
#include "cpu_ops.h" /* cpu_convert for host-to-host copies */
}

__device__ __forceinline__ float src_f32(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float src_f32(const __half *p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ float src_f32(const bf16 *p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ float src_f32(const __nv_fp8_e4m3 *p, int64_t i) { return float(p[i]); }
__device__ __forceinline__ float src_f32(const __nv_fp8_e5m2 *p, int64_t i) { return float(p[i]); }
/* f64 goes through f32, as cpu_convert does */
__device__ __forceinline__ float src_f32(const double *p, int64_t i) { return (float)p[i]; }

__device__ __forceinline__ void dst_put(float *p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void dst_put(__half *p, int64_t i, float v) { p[i] = __float2half_rn(v); }
__device__ __forceinline__ void dst_put(bf16 *p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }

template <typename TS, typename TD>
__global__ void convert_kernel(const TS *__restrict__ src, TD *__restrict__ dst, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        dst_put(dst, i, src_f32(src, i));
}

template <typename TS>
static int launch_convert_to(backend *be, const TS *src, void *dst, enum dtype ddt, int64_t n)
{
    unsigned grid = cuda_grid(be, n, 256);
    cudaStream_t s = cuda_stream(be);
    if (ddt == DT_F32)
        convert_kernel<<<grid, 256, 0, s>>>(src, (float *)dst, n);
    else if (ddt == DT_F16)
        convert_kernel<<<grid, 256, 0, s>>>(src, (__half *)dst, n);
    else
        convert_kernel<<<grid, 256, 0, s>>>(src, (bf16 *)dst, n);
    CUDA_TRY_LAUNCH("convert_kernel");
    return REEL_OK;
}

/* n elements of device memory src (sdt) -> dst (ddt), both on the device; dtypes checked. */
static int convert_device(backend *be, const void *src, enum dtype sdt, void *dst, enum dtype ddt,
                          int64_t n)
{
    if (n == 0)
        return REEL_OK;
    if (sdt == ddt) {
        CUDA_TRY(cudaMemcpyAsync(dst, src, (size_t)n * dtype_size(sdt), cudaMemcpyDeviceToDevice,
                                 cuda_stream(be)));
        return REEL_OK;
    }
    switch (sdt) {
    case DT_F32: return launch_convert_to(be, (const float *)src, dst, ddt, n);
    case DT_F16: return launch_convert_to(be, (const __half *)src, dst, ddt, n);
    case DT_BF16: return launch_convert_to(be, (const bf16 *)src, dst, ddt, n);
    case DT_F8_E4M3: return launch_convert_to(be, (const __nv_fp8_e4m3 *)src, dst, ddt, n);
    case DT_F8_E5M2: return launch_convert_to(be, (const __nv_fp8_e5m2 *)src, dst, ddt, n);
    default: return launch_convert_to(be, (const double *)src, dst, ddt, n);
    }
}

static int check_conversion(enum dtype s, enum dtype d)
{
    if (s == d)
        return REEL_OK;
    bool src_ok = s == DT_F32 || s == DT_F16 || s == DT_BF16 || s == DT_F8_E4M3 ||
                  s == DT_F8_E5M2 || s == DT_F64;
    bool dst_ok = d == DT_F32 || d == DT_F16 || d == DT_BF16;
    if (!src_ok || !dst_ok)
        return err_set(REEL_E_UNSUPPORTED, "copy: no conversion from %s to %s (float formats "
                       "f32/f16/bf16/f8/f64 convert to f32/f16/bf16)", dtype_name(s), dtype_name(d));
    return REEL_OK;
}

static int staging_ready(backend *be)
{
    cuda_impl *impl = cuda_impl_of(be);
    for (int b = 0; b < 2; b++) {
        if (impl->pinned[b])
            continue;
        cudaError_t e = cudaHostAlloc(&impl->pinned[b], CUDA_STAGE_BYTES, cudaHostAllocDefault);
        if (e != cudaSuccess) {
            impl->pinned[b] = NULL;
            cudaGetLastError();
            return err_set(REEL_E_NOMEM, "cuda copy: cannot pin %zu bytes of host staging: %s",
                           CUDA_STAGE_BYTES, cudaGetErrorString(e));
        }
        e = cudaMalloc(&impl->raw[b], CUDA_STAGE_BYTES);
        if (e != cudaSuccess) {
            impl->raw[b] = NULL;
            cudaGetLastError();
            return err_set(REEL_E_DEVICE, "cuda copy: cannot allocate %zu bytes of device staging: %s",
                           CUDA_STAGE_BYTES, cudaGetErrorString(e));
        }
        CUDA_TRY(cudaEventCreateWithFlags(&impl->staged[b], cudaEventDisableTiming));
    }
    return REEL_OK;
}

void cuda_staging_release(cuda_impl *impl)
{
    for (int b = 0; b < 2; b++) {
        if (impl->staged[b])
            cudaEventDestroy(impl->staged[b]);
        if (impl->pinned[b])
            cudaFreeHost(impl->pinned[b]);
        if (impl->raw[b])
            cudaFree(impl->raw[b]);
    }
}

/* Elements per staging chunk: raw source bytes and converted bytes both fit one buffer. */
static int64_t chunk_elems(enum dtype s, enum dtype d)
{
    size_t e = dtype_size(s) > dtype_size(d) ? dtype_size(s) : dtype_size(d);
    return (int64_t)(CUDA_STAGE_BYTES / e);
}

static int upload(backend *be, const tensor *src, tensor *dst, int64_t n)
{
    cuda_impl *impl = cuda_impl_of(be);
    cudaStream_t s = impl->stream;
    size_t ss = dtype_size(src->dtype), ds = dtype_size(dst->dtype);
    int64_t chunk = chunk_elems(src->dtype, dst->dtype);
    for (int64_t i = 0, c = 0; i < n; i += chunk, c++) {
        int b = (int)(c % 2);
        int64_t m = n - i < chunk ? n - i : chunk;
        CUDA_TRY(cudaEventSynchronize(impl->staged[b])); /* this buffer's last DMA is done */
        memcpy(impl->pinned[b], (const char *)src->data + i * ss, (size_t)m * ss);
        char *d = (char *)dst->data + i * ds;
        if (src->dtype == dst->dtype) {
            CUDA_TRY(cudaMemcpyAsync(d, impl->pinned[b], (size_t)m * ss, cudaMemcpyHostToDevice, s));
        } else {
            CUDA_TRY(cudaMemcpyAsync(impl->raw[b], impl->pinned[b], (size_t)m * ss,
                                     cudaMemcpyHostToDevice, s));
            TRY(convert_device(be, impl->raw[b], src->dtype, d, dst->dtype, m));
        }
        CUDA_TRY(cudaEventRecord(impl->staged[b], s));
    }
    return REEL_OK;
}

static int download(backend *be, const tensor *src, tensor *dst, int64_t n)
{
    cuda_impl *impl = cuda_impl_of(be);
    cudaStream_t s = impl->stream;
    size_t ss = dtype_size(src->dtype), ds = dtype_size(dst->dtype);
    int64_t chunk = chunk_elems(src->dtype, dst->dtype);
    int64_t chunks = (n + chunk - 1) / chunk;
    /* chunk c is queued into buffer c % 2 while the host drains chunk c - 1 */
    for (int64_t c = 0; c <= chunks; c++) {
        if (c < chunks) {
            int b = (int)(c % 2);
            int64_t i = c * chunk, m = n - i < chunk ? n - i : chunk;
            const char *sp = (const char *)src->data + i * ss;
            if (src->dtype != dst->dtype) {
                TRY(convert_device(be, sp, src->dtype, impl->raw[b], dst->dtype, m));
                sp = (const char *)impl->raw[b];
            }
            CUDA_TRY(cudaMemcpyAsync(impl->pinned[b], sp, (size_t)m * ds, cudaMemcpyDeviceToHost, s));
            CUDA_TRY(cudaEventRecord(impl->staged[b], s));
        }
        if (c > 0) {
            int b = (int)((c - 1) % 2);
            int64_t i = (c - 1) * chunk, m = n - i < chunk ? n - i : chunk;
            CUDA_TRY(cudaEventSynchronize(impl->staged[b]));
            memcpy((char *)dst->data + i * ds, impl->pinned[b], (size_t)m * ds);
        }
    }
    return REEL_OK;
}

static int check_side(const char *arg, const tensor *t)
{
    unsigned any = DTM(DT_COUNT) - 1;
    return barg_contig("copy", arg, t, t->dev == DEV_CUDA ? DEV_CUDA : DEV_CPU, any);
}

int cuda_copy(backend *be, const tensor *src, tensor *dst)
{
    char a[96], b[96];
    TRY(check_side("src", src));
    TRY(check_side("dst", dst));
    int64_t n = tensor_numel(src);
    if (n != tensor_numel(dst))
        return err_set(REEL_E_INVALID, "copy: src %s and dst %s differ in element count",
                       tensor_shape_str(src, a, sizeof a), tensor_shape_str(dst, b, sizeof b));
    TRY(check_conversion(src->dtype, dst->dtype));
    if (n == 0 || (src->data == dst->data && src->dtype == dst->dtype && src->dev == dst->dev))
        return REEL_OK;
    if (src->dev == DEV_CPU && dst->dev == DEV_CPU)
        return cpu_convert(src->data, src->dtype, dst->data, dst->dtype, n);
    TRY(cuda_enter(be));
    if (src->dev == DEV_CUDA && dst->dev == DEV_CUDA)
        return convert_device(be, src->data, src->dtype, dst->data, dst->dtype, n);
    TRY(staging_ready(be));
    return src->dev == DEV_CPU ? upload(be, src, dst, n) : download(be, src, dst, n);
}

template <typename T> __global__ void fill_kernel(T *__restrict__ p, T v, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        p[i] = v;
}

int cuda_fill(backend *be, tensor *t, float value)
{
    TRY(barg_contig("fill", "t", t, DEV_CUDA, DTM(DT_F32) | DTM(DT_F16) | DTM(DT_BF16)));
    int64_t n = tensor_numel(t);
    if (n == 0)
        return REEL_OK;
    TRY(cuda_enter(be));
    unsigned grid = cuda_grid(be, n, 256);
    cudaStream_t s = cuda_stream(be);
    /* the bit pattern is made on the host (numeric.h rounding, NaN kept a NaN) */
    if (t->dtype == DT_F32) {
        fill_kernel<<<grid, 256, 0, s>>>((uint32_t *)t->data, f32_bits(value), n);
    } else {
        uint16_t bits = t->dtype == DT_BF16 ? f32_to_bf16(value) : f32_to_f16(value);
        fill_kernel<<<grid, 256, 0, s>>>((uint16_t *)t->data, bits, n);
    }
    CUDA_TRY_LAUNCH("fill_kernel");
    return REEL_OK;
}
