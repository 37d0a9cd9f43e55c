/* The CPU backend: fp32 everywhere, the reference every CUDA kernel is tested against
 * (tests/test_ops_cpu.c checks each op against a naive double-precision loop). Ops run on the
 * calling thread plus a pool of workers, split by rows; memory is plain aligned host memory. */
#include "cpu_ops.h"

#include "error.h"
#include "numeric.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CPU_ALIGN 64

/* Row jobs below this many values run inline: waking workers costs more than the work. */
#define CPU_INLINE_VALUES 32768

void cpu_for_rows(backend *be, int64_t rows, int64_t cols, cpu_task_fn fn, void *ctx)
{
    int64_t grain = cols > 0 ? (CPU_INLINE_VALUES + cols - 1) / cols : rows;
    cpu_pool_for(cpu_impl_of(be)->pool, rows, grain, fn, ctx);
}

static int cpu_alloc(backend *be, size_t bytes, void **ptr)
{
    *ptr = NULL;
    if (bytes == 0)
        return REEL_OK;
    size_t rounded = (bytes + CPU_ALIGN - 1) & ~(size_t)(CPU_ALIGN - 1);
    if (rounded < bytes || !(*ptr = aligned_alloc(CPU_ALIGN, rounded)))
        return err_set(REEL_E_NOMEM, "cpu backend: cannot allocate %zu bytes", bytes);
    return REEL_OK;
}

static void cpu_free(backend *be, void *ptr) { free(ptr); }

static int cpu_copy(backend *be, const tensor *src, tensor *dst)
{
    char a[96], b[96];
    unsigned any = DTM(DT_COUNT) - 1;
    TRY(barg_contig("copy", "src", src, DEV_CPU, any));
    TRY(barg_contig("copy", "dst", dst, DEV_CPU, any));
    if (tensor_numel(src) != tensor_numel(dst))
        return err_set(REEL_E_INVALID, "copy: src %s and dst %s differ in element count",
                       tensor_shape_str(src, a, sizeof a), tensor_shape_str(dst, b, sizeof b));
    if (src->data == dst->data && src->dtype == dst->dtype)
        return REEL_OK;
    return cpu_convert(src->data, src->dtype, dst->data, dst->dtype, tensor_numel(src));
}

static int cpu_fill(backend *be, tensor *t, float value)
{
    TRY(barg_contig("fill", "t", t, DEV_CPU, DTM(DT_F32) | DTM(DT_F16) | DTM(DT_BF16)));
    int64_t n = tensor_numel(t);
    if (t->dtype == DT_F32) {
        float *d = t->data;
        for (int64_t i = 0; i < n; i++)
            d[i] = value;
    } else {
        uint16_t bits = t->dtype == DT_BF16 ? f32_to_bf16(value) : f32_to_f16(value);
        uint16_t *d = t->data;
        for (int64_t i = 0; i < n; i++)
            d[i] = bits;
    }
    return REEL_OK;
}

static int cpu_sync(backend *be) { return REEL_OK; }

static void cpu_destroy(backend *be)
{
    cpu_impl *impl = cpu_impl_of(be);
    if (impl) {
        cpu_pool_free(impl->pool);
        free(impl->pack);
        free(impl);
    }
    free(be);
}

static const struct backend_ops cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy = cpu_copy,
    .fill = cpu_fill,
    .sync = cpu_sync,
    .gemm = cpu_gemm,
    .layer_norm = cpu_layer_norm,
    .rms_norm = cpu_rms_norm,
    .rope3d = cpu_rope3d,
    .add_gated = cpu_add_gated,
    .add_gated_norm = cpu_add_gated_norm,
    .modulate = cpu_modulate,
    .gelu_tanh = cpu_gelu_tanh,
    .silu = cpu_silu,
    .softmax = cpu_softmax,
    .patch_embed = cpu_patch_embed,
    .unpatchify = cpu_unpatchify,
    .lincomb = cpu_lincomb,
};

int backend_cpu_create(int threads, backend **out)
{
    *out = NULL;
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)(n < 256 ? n : 256) : 1;
    }
    backend *be = calloc(1, sizeof *be);
    cpu_impl *impl = calloc(1, sizeof *impl);
    if (!be || !impl) {
        free(be);
        free(impl);
        return err_set(REEL_E_NOMEM, "cpu backend: out of memory");
    }
    be->ops = &cpu_ops;
    be->dev = DEV_CPU;
    be->threads = threads;
    be->impl = impl;
    size_t pack = (size_t)threads * CPU_GEMM_KC * CPU_GEMM_NC * sizeof(float);
    impl->pack = aligned_alloc(CPU_ALIGN, pack);
    if (!impl->pack) {
        cpu_destroy(be);
        return err_set(REEL_E_NOMEM, "cpu backend: cannot allocate %zu bytes of GEMM buffers",
                       pack);
    }
    int st = cpu_pool_create(threads, &impl->pool);
    if (st < 0) {
        cpu_destroy(be);
        return st;
    }
    *out = be;
    return REEL_OK;
}
