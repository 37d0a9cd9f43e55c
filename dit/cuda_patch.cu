/* Patch embedding and unpatchify on CUDA.
 *
 * patch_embed: im2col_kernel gathers each token's C x pt x ph x pw patch ((c, pt, ph, pw) order,
 * c slowest, as w[D, C, pt, ph, pw] is laid out) into a [L, K] matrix in w's dtype (bf16, or
 * f32 for an f32 weight), then cuda_gemm contracts it with w viewed as [D, K] (+ bias). One
 * thread per matrix element, grid-stride; writes coalesced, reads strided by pw: the latent
 * is small (Wan 480p: 16 x 21 x 60 x 104 f32 = 8.4 MB). The matrix comes from the stream-ordered
 * pool and goes back after the GEMM.
 * unpatchify: one thread per output element of [C, F, H, W] (coalesced writes), reading token
 * (fi, yi, xi)'s element ((t*ph + y)*pw + x)*C + c.
 * CPU reference: dit/cpu_patch.c; test: tests/gpu/test_ops_cuda.c. */
#include "cuda_ops.h"
#include "cuda_vec.cuh"

struct patch_dims {
    int64_t C, F, H, W;  /* latent */
    int pt, ph, pw;      /* patch */
    int f, h, w;         /* token grid */
};

template <typename TL, typename TC>
__global__ void im2col_kernel(const TL *__restrict__ lat, TC *__restrict__ cols, patch_dims d)
{
    int64_t patch = (int64_t)d.pt * d.ph * d.pw, k = d.C * patch;
    int64_t n = (int64_t)d.f * d.h * d.w * k;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t tok = i / k, e = i % k;
        int64_t xi = tok % d.w, yi = tok / d.w % d.h, fi = tok / ((int64_t)d.w * d.h);
        int64_t c = e / patch, q = e % patch;
        int x = (int)(q % d.pw), y = (int)(q / d.pw % d.ph), t = (int)(q / ((int64_t)d.pw * d.ph));
        float v = to_f32(lat[((c * d.F + fi * d.pt + t) * d.H + yi * d.ph + y) * d.W + xi * d.pw + x]);
        cols[i] = from_f32<TC>(v);
    }
}

template <typename TX, typename TO>
__global__ void unpatchify_kernel(const TX *__restrict__ x, int64_t xs, TO *__restrict__ out,
                                  patch_dims d)
{
    int64_t n = d.C * d.F * d.H * d.W;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t xx = i % d.W, yy = i / d.W % d.H, tt = i / (d.W * d.H) % d.F, c = i / (d.W * d.H * d.F);
        int64_t tok = (tt / d.pt * d.h + yy / d.ph) * d.w + xx / d.pw;
        int64_t e = (((tt % d.pt) * d.ph + yy % d.ph) * d.pw + xx % d.pw) * d.C + c;
        out[i] = from_f32<TO>(to_f32(x[tok * xs + e]));
    }
}

static patch_dims dims_of(const patch_geom &g, int64_t channels)
{
    patch_dims d = {channels, (int64_t)g.f * g.pt, (int64_t)g.h * g.ph, (int64_t)g.w * g.pw,
                    g.pt, g.ph, g.pw, g.f, g.h, g.w};
    return d;
}

int cuda_patch_embed(backend *be, const tensor *latent, const tensor *w, const tensor *bias,
                     tensor *out)
{
    patch_args pa;
    TRY(barg_patch_embed("patch_embed", latent, w, bias, out, DEV_CUDA, CUDA_FLOATS, CUDA_FLOATS, &pa));
    patch_dims d = dims_of(pa.g, pa.channels);
    int64_t tokens = pa.out.rows, k = pa.channels * pa.g.pt * pa.g.ph * pa.g.pw;
    if (tokens == 0)
        return REEL_OK;
    TRY(cuda_enter(be));
    void *cols;
    TRY(cuda_scratch_alloc(be, (size_t)(tokens * k) * dtype_size(w->dtype), &cols, "patch_embed im2col"));
    unsigned grid = cuda_grid(be, tokens * k, 256);
    cudaStream_t s = cuda_stream(be);
    int st = dispatch_xo(latent->dtype, w->dtype, [&](auto lt, auto ct) -> int {
        using TL = decltype(lt);
        using TC = decltype(ct);
        im2col_kernel<<<grid, 256, 0, s>>>(static_cast<const TL *>(latent->data),
                                           static_cast<TC *>(cols), d);
        CUDA_TRY_LAUNCH("im2col_kernel");
        return REEL_OK;
    });
    if (st == REEL_OK) {
        tensor a = tensor_2d(cols, w->dtype, DEV_CUDA, tokens, k);
        tensor w2 = tensor_2d(w->data, w->dtype, DEV_CUDA, pa.dim, k);
        st = cuda_gemm(be, &a, &w2, bias, ACT_NONE, out);
    }
    int fst = cuda_scratch_free(be, cols);
    return st < 0 ? st : fst;
}

int cuda_unpatchify(backend *be, const tensor *x, const patch_geom *g, tensor *out)
{
    row_view xv;
    int64_t channels;
    TRY(barg_unpatchify("unpatchify", x, g, out, DEV_CUDA, CUDA_FLOATS, CUDA_FLOATS, &xv, &channels));
    patch_dims d = dims_of(*g, channels);
    int64_t n = tensor_numel(out);
    if (n == 0)
        return REEL_OK;
    TRY(cuda_enter(be));
    unsigned grid = cuda_grid(be, n, 256);
    cudaStream_t s = cuda_stream(be);
    return dispatch_xo(xv.dtype, out->dtype, [&](auto xt, auto ot) -> int {
        using TX = decltype(xt);
        using TO = decltype(ot);
        unpatchify_kernel<<<grid, 256, 0, s>>>(static_cast<const TX *>(xv.data), xv.stride,
                                               static_cast<TO *>(out->data), d);
        CUDA_TRY_LAUNCH("unpatchify_kernel");
        return REEL_OK;
    });
}
