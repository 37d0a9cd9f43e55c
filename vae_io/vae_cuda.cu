/* The CUDA executor of the Wan VAE (layouts in vae_cuda.h). Convolutions run on cuDNN where it
 * is built in and can express them, else on our implicit-GEMM kernel (REEL_VAE_CONV=igemm or
 * =cudnn forces one, for tests and benchmarks). The middle attention is two cuBLAS GEMMs per
 * frame around a softmax kernel. Everything is queued on the backend's stream; host transfers
 * go through pinned staging with events, so a decoded chunk is copied out while the next one
 * is computed. */
#include "vae_cuda.h"

#include "dit/numeric.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static cuda_vae *impl(vae_exec *ex) { return (cuda_vae *)ex->impl; }

static size_t act_bytes(const vae_act *a)
{
    return (size_t)a->t * a->h * a->w * vae_cp8(a->c) * sizeof(bf16);
}

int vae_pool_alloc(cuda_vae *cv, size_t bytes, void **p, const char *what)
{
    *p = NULL;
    if (!bytes)
        return REEL_OK;
    cudaError_t e = cudaMallocFromPoolAsync(p, bytes, cv->pool, cv->stream);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return err_set(REEL_E_DEVICE, "vae: cannot allocate %.1f MiB of device memory for %s: %s",
                       (double)bytes / (1 << 20), what, cudaGetErrorString(e));
    }
    return REEL_OK;
}

void vae_pool_free(cuda_vae *cv, void *p)
{
    if (p)
        cudaFreeAsync(p, cv->stream);
}

/* ---- weights ------------------------------------------------------------------------------ */

static int keep_weight(cuda_vae *cv, size_t bytes, void **p)
{
    if (cv->nweights == cv->weights_cap) {
        int cap = cv->weights_cap ? 2 * cv->weights_cap : 256;
        void **n = (void **)realloc(cv->weights, (size_t)cap * sizeof(void *));
        if (!n)
            return err_set(REEL_E_NOMEM, "vae: weight list");
        cv->weights = n, cv->weights_cap = cap;
    }
    CUDA_TRY(cudaMalloc(p, bytes));
    cv->weights[cv->nweights++] = *p;
    cv->weight_bytes += bytes;
    return REEL_OK;
}

/* [cout][cin][taps] f32 -> [cout_p][taps][cin_p] bf16 (zero padded), bias -> f32 [cout_p]. */
static int upload_conv(cuda_vae *cv, vae_conv *L)
{
    vae_dconv *d = (vae_dconv *)calloc(1, sizeof *d);
    if (!d)
        return err_set(REEL_E_NOMEM, "vae: %s device record", L->name);
    L->dev = d;
    int taps = L->kt * L->kh * L->kw;
    d->cinp = vae_cp8(L->cin), d->coutp = vae_cp8(L->cout);
    size_t nw = (size_t)d->coutp * taps * d->cinp;
    uint16_t *hw = (uint16_t *)calloc(nw, sizeof(uint16_t));
    float *hb = (float *)calloc((size_t)d->coutp, sizeof(float));
    int st = REEL_OK;
    if (!hw || !hb) {
        st = err_set(REEL_E_NOMEM, "vae: %s staging", L->name);
        goto done;
    }
    for (int co = 0; co < L->cout; co++) {
        hb[co] = L->b[co];
        for (int ci = 0; ci < L->cin; ci++)
            for (int k = 0; k < taps; k++)
                hw[((size_t)co * taps + k) * d->cinp + ci] = f32_to_bf16(L->w[((size_t)co * L->cin + ci) * taps + k]);
    }
    if ((st = keep_weight(cv, nw * sizeof(uint16_t), (void **)&d->w)) < 0 ||
        (st = keep_weight(cv, (size_t)d->coutp * sizeof(float), (void **)&d->b)) < 0)
        goto done;
    if (cudaMemcpy(d->w, hw, nw * sizeof(uint16_t), cudaMemcpyHostToDevice) != cudaSuccess ||
        cudaMemcpy(d->b, hb, (size_t)d->coutp * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess)
        st = err_set(REEL_E_DEVICE, "vae: uploading %s: %s", L->name, cudaGetErrorString(cudaGetLastError()));
done:
    free(hw);
    free(hb);
    return st;
}

static int upload_norm(cuda_vae *cv, vae_norm *n)
{
    if (!n->g)
        return REEL_OK;
    int cp = vae_cp8(n->c);
    float *h = (float *)calloc((size_t)cp, sizeof(float));
    if (!h)
        return err_set(REEL_E_NOMEM, "vae: norm staging");
    memcpy(h, n->g, (size_t)n->c * sizeof(float));
    int st = keep_weight(cv, (size_t)cp * sizeof(float), &n->dev);
    if (st >= 0 && cudaMemcpy(n->dev, h, (size_t)cp * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess)
        st = err_set(REEL_E_DEVICE, "vae: uploading a norm: %s", cudaGetErrorString(cudaGetLastError()));
    free(h);
    return st;
}

static void free_conv(vae_conv *L)
{
    vae_dconv *d = (vae_dconv *)L->dev;
    if (!d)
        return;
#ifdef REEL_HAVE_CUDNN
    vae_cudnn_conv_free(d);
#endif
    free(d);
    L->dev = NULL;
}

static int cu_prepare(vae_exec *ex, wan_vae *v)
{
    cuda_vae *cv = impl(ex);
    vae_net *nets[2] = {&v->enc, &v->dec};
    CUDA_TRY(cudaSetDevice(cv->device));
    cv->model = v;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < nets[k]->n; i++) {
            vae_layer *L = &nets[k]->l[i];
            for (int j = 0; j < L->nconv; j++)
                TRY(upload_conv(cv, &L->c[j]));
            TRY(upload_norm(cv, &L->n1));
            TRY(upload_norm(cv, &L->n2));
            if (L->kind == VK_ATTN && L->cin % 8)
                return err_set(REEL_E_UNSUPPORTED, "vae: %s: attention over %d channels needs a "
                               "multiple of 8 on CUDA", L->name, L->cin);
            if (L->kind == VK_UP3D && L->cin % 8)
                return err_set(REEL_E_UNSUPPORTED, "vae: %s: %d channels, a multiple of 8 is "
                               "needed on CUDA", L->name, L->cin);
        }
    if (v->has_encoder)
        TRY(upload_conv(cv, &v->quant));
    TRY(upload_conv(cv, &v->post_quant));
    vae_net_free_host(v); /* the device copies are all that is used from here on */
    return REEL_OK;
}

/* ---- activations and transfers --------------------------------------------------------- */

static int cu_alloc(vae_exec *ex, int c, int t, int h, int w, vae_act *a)
{
    a->c = c, a->t = t, a->h = h, a->w = w;
    return vae_pool_alloc(impl(ex), act_bytes(a), &a->data, "an activation");
}

static void cu_release(vae_exec *ex, vae_act *a)
{
    vae_pool_free(impl(ex), a->data);
    a->data = NULL;
}

static int cu_zero(vae_exec *ex, vae_act *a)
{
    CUDA_TRY(cudaMemsetAsync(a->data, 0, act_bytes(a), impl(ex)->stream));
    return REEL_OK;
}

/* Grows a pinned buffer to n floats; waits for `done` first since the device may still read or
 * write the old one. */
static int pinned_reserve(float **buf, size_t *cap, size_t n, cudaEvent_t done)
{
    CUDA_TRY(cudaEventSynchronize(done));
    if (*cap >= n)
        return REEL_OK;
    if (*buf)
        CUDA_TRY(cudaFreeHost(*buf));
    *buf = NULL, *cap = 0;
    CUDA_TRY(cudaMallocHost((void **)buf, n * sizeof(float)));
    *cap = n;
    return REEL_OK;
}

static int cu_upload(vae_exec *ex, const float *host, vae_act *a)
{
    cuda_vae *cv = impl(ex);
    size_t vox = (size_t)a->t * a->h * a->w, n = vox * a->c;
    TRY(pinned_reserve(&cv->up_host, &cv->up_cap, n, cv->up_done));
    memcpy(cv->up_host, host, n * sizeof(float));
    float *tmp;
    TRY(vae_pool_alloc(cv, n * sizeof(float), (void **)&tmp, "an upload"));
    int st = REEL_OK;
    if (cudaMemcpyAsync(tmp, cv->up_host, n * sizeof(float), cudaMemcpyHostToDevice, cv->stream) != cudaSuccess ||
        cudaEventRecord(cv->up_done, cv->stream) != cudaSuccess)
        st = err_set(REEL_E_DEVICE, "vae: upload: %s", cudaGetErrorString(cudaGetLastError()));
    if (st >= 0)
        st = vae_k_pack(cv, tmp, (bf16 *)a->data, a->c, vae_cp8(a->c), (int64_t)vox);
    vae_pool_free(cv, tmp);
    return st;
}

static int cu_download(vae_exec *ex, const vae_act *a, int slot, int clamp)
{
    cuda_vae *cv = impl(ex);
    size_t vox = (size_t)a->t * a->h * a->w, n = vox * a->c;
    TRY(pinned_reserve(&cv->down_host[slot], &cv->down_cap[slot], n, cv->down_done[slot]));
    float *tmp;
    TRY(vae_pool_alloc(cv, n * sizeof(float), (void **)&tmp, "a download"));
    int st = vae_k_unpack(cv, (const bf16 *)a->data, tmp, a->c, vae_cp8(a->c), (int64_t)vox, clamp);
    if (st >= 0 && (cudaMemcpyAsync(cv->down_host[slot], tmp, n * sizeof(float),
                                    cudaMemcpyDeviceToHost, cv->stream) != cudaSuccess ||
                    cudaEventRecord(cv->down_done[slot], cv->stream) != cudaSuccess))
        st = err_set(REEL_E_DEVICE, "vae: download: %s", cudaGetErrorString(cudaGetLastError()));
    vae_pool_free(cv, tmp);
    return st;
}

static int cu_fetch(vae_exec *ex, int slot, const float **host)
{
    cuda_vae *cv = impl(ex);
    CUDA_TRY(cudaEventSynchronize(cv->down_done[slot]));
    CUDA_TRY(cudaGetLastError());
    *host = cv->down_host[slot];
    return REEL_OK;
}

/* ---- convolution ---------------------------------------------------------------------------- */

static int conv_engine(cuda_vae *cv, const vae_conv *L, const bf16 *in, int tin, int h, int w,
                       bf16 *out, int to, int ho, int wo, const bf16 *res)
{
    vae_dconv *d = (vae_dconv *)L->dev;
    if (d->engine == VAE_ENGINE_AUTO) {
        int symmetric = L->pad_top == L->pad_bottom && L->pad_left == L->pad_right;
        d->engine = cv->dnn && symmetric && cv->force != VAE_ENGINE_IGEMM ? VAE_ENGINE_CUDNN
                                                                          : VAE_ENGINE_IGEMM;
    }
#ifdef REEL_HAVE_CUDNN
    if (d->engine == VAE_ENGINE_CUDNN) {
        int st = vae_cudnn_conv(cv, L, d, in, tin, h, w, out, to, ho, wo);
        if (st >= 0)
            return vae_k_bias_res(cv, out, d->b, res, (int64_t)to * ho * wo, d->coutp);
        if (st != REEL_E_UNSUPPORTED || cv->force == VAE_ENGINE_CUDNN)
            return st;
        d->engine = VAE_ENGINE_IGEMM; /* cuDNN cannot: ours can */
        err_clear();
    }
#endif
    return vae_igemm_conv(cv, L, d, in, tin, h, w, out, to, ho, wo, res);
}

/* The kernel runs over [cache frames, pre(x) frames] in one scratch buffer; afterwards the
 * cache takes the last cache_frames of it. */
static int cu_conv(vae_exec *ex, const vae_conv *L, vae_act *cache, const vae_act *x,
                   const vae_norm *pre, const vae_act *res, vae_act *out)
{
    cuda_vae *cv = impl(ex);
    vae_dconv *d = (vae_dconv *)L->dev;
    int nc = L->cache_frames, tin = nc + x->t;
    size_t frame = (size_t)x->h * x->w * d->cinp;
    const bf16 *in = (const bf16 *)x->data;
    bf16 *scratch = NULL;
    int st = REEL_OK;
    if (nc || pre) {
        TRY(vae_pool_alloc(cv, (size_t)tin * frame * sizeof(bf16), (void **)&scratch, L->name));
        if (nc && cudaMemcpyAsync(scratch, cache->data, nc * frame * sizeof(bf16),
                                  cudaMemcpyDeviceToDevice, cv->stream) != cudaSuccess)
            st = err_set(REEL_E_DEVICE, "vae: %s cache: %s", L->name, cudaGetErrorString(cudaGetLastError()));
        if (st >= 0 && pre)
            st = vae_k_norm(cv, in, scratch + nc * frame, (const float *)pre->dev,
                            (int64_t)x->t * x->h * x->w, L->cin, d->cinp, 1);
        else if (st >= 0 && cudaMemcpyAsync(scratch + nc * frame, in, x->t * frame * sizeof(bf16),
                                            cudaMemcpyDeviceToDevice, cv->stream) != cudaSuccess)
            st = err_set(REEL_E_DEVICE, "vae: %s input: %s", L->name, cudaGetErrorString(cudaGetLastError()));
        in = scratch;
    }
    if (st >= 0)
        st = conv_engine(cv, L, in, tin, x->h, x->w, (bf16 *)out->data, out->t, out->h, out->w,
                         res ? (const bf16 *)res->data : NULL);
    if (st >= 0 && nc &&
        cudaMemcpyAsync(cache->data, in + (size_t)(tin - nc) * frame, nc * frame * sizeof(bf16),
                        cudaMemcpyDeviceToDevice, cv->stream) != cudaSuccess)
        st = err_set(REEL_E_DEVICE, "vae: %s cache: %s", L->name, cudaGetErrorString(cudaGetLastError()));
    vae_pool_free(cv, scratch);
    return st;
}

/* ---- attention ------------------------------------------------------------------------------ */

/* Per frame of L tokens x c channels (c a multiple of 8, so q, k and v are column blocks of the
 * [L, 3c] to_qkv output): S = q k^T / sqrt(c) in f32, P = softmax(S) in bf16, o = P v. In
 * cuBLAS's column-major terms a row-major [rows, cols] matrix is its transpose, hence the
 * operand order. Memory: S and P of one frame, L^2 x 6 bytes. */
static int cu_attention(vae_exec *ex, const vae_layer *L, const vae_act *x, vae_act *out)
{
    cuda_vae *cv = impl(ex);
    int c = x->c, n = x->h * x->w;
    int64_t rows = (int64_t)x->t * n;
    bf16 *xn = NULL, *qkv = NULL, *p = NULL, *o = NULL;
    float *s = NULL;
    int st = vae_pool_alloc(cv, (size_t)rows * c * sizeof(bf16), (void **)&xn, "attention input");
    if (st >= 0)
        st = vae_pool_alloc(cv, (size_t)rows * 3 * c * sizeof(bf16), (void **)&qkv, "attention qkv");
    if (st >= 0)
        st = vae_pool_alloc(cv, (size_t)n * n * sizeof(float), (void **)&s, "attention scores");
    if (st >= 0)
        st = vae_pool_alloc(cv, (size_t)n * n * sizeof(bf16), (void **)&p, "attention weights");
    if (st >= 0)
        st = vae_pool_alloc(cv, (size_t)rows * c * sizeof(bf16), (void **)&o, "attention output");
    if (st >= 0)
        st = vae_k_norm(cv, (const bf16 *)x->data, xn, (const float *)L->n1.dev, rows, c, c, 0);
    if (st >= 0)
        st = conv_engine(cv, &L->c[0], xn, x->t, x->h, x->w, qkv, x->t, x->h, x->w, NULL);
    const float alpha = 1.0f / sqrtf((float)c), one = 1.0f, zero = 0.0f;
    for (int f = 0; st >= 0 && f < x->t; f++) {
        const bf16 *q = qkv + (size_t)f * n * 3 * c, *k = q + c, *v = q + 2 * c;
        cublasStatus_t b = cublasGemmEx(cv->blas, CUBLAS_OP_T, CUBLAS_OP_N, n, n, c, &alpha, k,
                                        CUDA_R_16BF, 3 * c, q, CUDA_R_16BF, 3 * c, &zero, s,
                                        CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        if (b == CUBLAS_STATUS_SUCCESS)
            st = vae_k_softmax(cv, s, p, n, n);
        if (b == CUBLAS_STATUS_SUCCESS && st >= 0)
            b = cublasGemmEx(cv->blas, CUBLAS_OP_N, CUBLAS_OP_N, c, n, n, &one, v, CUDA_R_16BF,
                             3 * c, p, CUDA_R_16BF, n, &zero, o + (size_t)f * n * c, CUDA_R_16BF,
                             c, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        if (b != CUBLAS_STATUS_SUCCESS)
            st = err_set(REEL_E_DEVICE, "vae: %s: cuBLAS attention GEMM over %d tokens: %s", L->name,
                         n, cublasGetStatusString(b));
    }
    if (st >= 0)
        st = conv_engine(cv, &L->c[1], o, x->t, x->h, x->w, (bf16 *)out->data, x->t, x->h, x->w,
                         (const bf16 *)x->data);
    vae_pool_free(cv, xn);
    vae_pool_free(cv, qkv);
    vae_pool_free(cv, s);
    vae_pool_free(cv, p);
    vae_pool_free(cv, o);
    return st;
}

static int cu_upsample(vae_exec *ex, const vae_act *x, int interleave, vae_act *out)
{
    return vae_k_upsample(impl(ex), (const bf16 *)x->data, (bf16 *)out->data, out->t, x->h, x->w,
                          vae_cp8(out->c), interleave);
}

static int cu_keep_last(vae_exec *ex, const vae_act *x, vae_act *cache)
{
    size_t frame = (size_t)x->h * x->w * vae_cp8(x->c) * sizeof(bf16);
    CUDA_TRY(cudaMemcpyAsync(cache->data, (const char *)x->data + (size_t)(x->t - cache->t) * frame,
                             (size_t)cache->t * frame, cudaMemcpyDeviceToDevice, impl(ex)->stream));
    return REEL_OK;
}

static void cu_memory(vae_exec *ex, size_t *peak, size_t *weights)
{
    cuda_vae *cv = impl(ex);
    uint64_t high = 0;
    cudaMemPoolGetAttribute(cv->pool, cudaMemPoolAttrUsedMemHigh, &high);
    if (peak)
        *peak = (size_t)high;
    if (weights)
        *weights = cv->weight_bytes;
}

static void cu_reset_peak(vae_exec *ex)
{
    uint64_t zero = 0;
    cudaMemPoolSetAttribute(impl(ex)->pool, cudaMemPoolAttrUsedMemHigh, &zero);
}

static void cu_destroy(vae_exec *ex)
{
    cuda_vae *cv = impl(ex);
    if (cv) {
        if (cv->stream || cv->pool)
            cudaStreamSynchronize(cv->stream);
        wan_vae *m = cv->model;
        if (m) {
            vae_net *nets[2] = {&m->enc, &m->dec};
            for (int k = 0; k < 2; k++)
                for (int i = 0; i < nets[k]->n; i++)
                    for (int j = 0; j < 3; j++)
                        free_conv(&nets[k]->l[i].c[j]);
            free_conv(&m->quant);
            free_conv(&m->post_quant);
        }
        vae_pool_free(cv, cv->dnn_ws);
        vae_pool_free(cv, cv->blas_ws);
#ifdef REEL_HAVE_CUDNN
        vae_cudnn_destroy(cv);
#endif
        if (cv->blas)
            cublasDestroy(cv->blas);
        cudaStreamSynchronize(cv->stream);
        for (int i = 0; i < cv->nweights; i++)
            cudaFree(cv->weights[i]);
        free(cv->weights);
        cudaFreeHost(cv->up_host);
        cudaFreeHost(cv->down_host[0]);
        cudaFreeHost(cv->down_host[1]);
        if (cv->up_done)
            cudaEventDestroy(cv->up_done);
        for (int i = 0; i < 2; i++)
            if (cv->down_done[i])
                cudaEventDestroy(cv->down_done[i]);
        if (cv->pool)
            cudaMemPoolDestroy(cv->pool);
        free(cv);
    }
    free(ex);
}

static const struct vae_exec_ops cuda_ops = {
    cu_prepare,  cu_destroy,   cu_alloc,  cu_release,   cu_zero,
    cu_upload,   cu_download,  cu_fetch,  cu_conv,      cu_attention,
    cu_upsample, cu_keep_last, cu_memory, cu_reset_peak,
};

static int cu_init(cuda_vae *cv, backend *be)
{
    const char *force = getenv("REEL_VAE_CONV");
    if (force && *force) {
        if (!strcmp(force, "igemm"))
            cv->force = VAE_ENGINE_IGEMM;
        else if (!strcmp(force, "cudnn"))
            cv->force = VAE_ENGINE_CUDNN;
        else
            return err_set(REEL_E_INVALID, "REEL_VAE_CONV=%s: expected igemm or cudnn", force);
    }
    cv->stream = (cudaStream_t)be->stream;
    cv->device = be->device_index;
    CUDA_TRY(cudaSetDevice(cv->device));
    cudaMemPoolProps props;
    memset(&props, 0, sizeof props);
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = cv->device;
    CUDA_TRY(cudaMemPoolCreate(&cv->pool, &props));
    uint64_t keep = UINT64_MAX; /* freed blocks stay in the pool for the next chunk */
    CUDA_TRY(cudaMemPoolSetAttribute(cv->pool, cudaMemPoolAttrReleaseThreshold, &keep));
    CUDA_TRY(cudaEventCreateWithFlags(&cv->up_done, cudaEventDisableTiming));
    CUDA_TRY(cudaEventCreateWithFlags(&cv->down_done[0], cudaEventDisableTiming));
    CUDA_TRY(cudaEventCreateWithFlags(&cv->down_done[1], cudaEventDisableTiming));
    CUBLAS_TRY(cublasCreate(&cv->blas));
    CUBLAS_TRY(cublasSetStream(cv->blas, cv->stream));
    TRY(vae_pool_alloc(cv, VAE_BLAS_WS, &cv->blas_ws, "the cuBLAS workspace"));
    CUBLAS_TRY(cublasSetWorkspace(cv->blas, cv->blas_ws, VAE_BLAS_WS));
#ifdef REEL_HAVE_CUDNN
    if (cv->force != VAE_ENGINE_IGEMM) {
        int st = vae_cudnn_create(cv);
        if (st < 0 && cv->force == VAE_ENGINE_CUDNN)
            return st;
        if (st < 0) { /* no usable cuDNN at run time: our kernels do it all */
            vae_cudnn_destroy(cv);
            err_clear();
        }
    }
#else
    if (cv->force == VAE_ENGINE_CUDNN)
        return err_set(REEL_E_UNSUPPORTED, "REEL_VAE_CONV=cudnn: this reel was built without cuDNN");
#endif
    return REEL_OK;
}

int vae_exec_cuda_create(backend *be, vae_exec **out)
{
    *out = NULL;
    vae_exec *ex = (vae_exec *)calloc(1, sizeof *ex);
    cuda_vae *cv = (cuda_vae *)calloc(1, sizeof *cv);
    if (!ex || !cv) {
        free(ex);
        free(cv);
        return err_set(REEL_E_NOMEM, "vae: CUDA executor");
    }
    ex->ops = &cuda_ops;
    ex->be = be;
    ex->impl = cv;
    int st = cu_init(cv, be);
    if (st < 0) {
        cu_destroy(ex);
        return st;
    }
    *out = ex;
    return REEL_OK;
}
