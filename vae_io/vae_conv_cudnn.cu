/* cuDNN convolutions for the VAE (built only with cuDNN): every convolution of the network is
 * one 3D convolution of batch 1 in NDHWC bf16 with fp32 accumulation (2D ones have a temporal
 * kernel of 1, frames act as depth). For each input size a convolution meets (first chunk,
 * later chunks, tiles), the algorithm is chosen once by timing cuDNN's candidates within a
 * bounded workspace (cudnnFindConvolutionForwardAlgorithmEx), then reused. Bias and residual
 * are added by vae_k_bias_res afterwards. Asymmetric padding is not expressible here: those
 * convolutions go to the implicit-GEMM engine. */
#include "vae_cuda.h"

#include <cudnn.h>

#include <stdlib.h>
#include <string.h>

#define DNN_TRY(call)                                                                       \
    do {                                                                                    \
        cudnnStatus_t dnn_s_ = (call);                                                      \
        if (dnn_s_ != CUDNN_STATUS_SUCCESS)                                                 \
            return err_set(dnn_s_ == CUDNN_STATUS_NOT_SUPPORTED ? REEL_E_UNSUPPORTED         \
                                                                : REEL_E_DEVICE,            \
                           "%s:%d: %s: %s", __FILE__, __LINE__, #call,                      \
                           cudnnGetErrorString(dnn_s_));                                    \
    } while (0)

#define DNN_PLANS 6

struct dnn_plan {
    int tin, h, w;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t f;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t algo;
    size_t ws;
};

struct vae_dnn {
    dnn_plan plan[DNN_PLANS];
    int n;
};

int vae_cudnn_create(cuda_vae *cv)
{
    cudnnHandle_t h;
    DNN_TRY(cudnnCreate(&h));
    cv->dnn = h;
    DNN_TRY(cudnnSetStream(h, cv->stream));
    return REEL_OK;
}

void vae_cudnn_destroy(cuda_vae *cv)
{
    if (cv->dnn)
        cudnnDestroy((cudnnHandle_t)cv->dnn);
    cv->dnn = NULL;
}

static void plan_free(dnn_plan *p)
{
    if (p->x)
        cudnnDestroyTensorDescriptor(p->x);
    if (p->y)
        cudnnDestroyTensorDescriptor(p->y);
    if (p->f)
        cudnnDestroyFilterDescriptor(p->f);
    if (p->conv)
        cudnnDestroyConvolutionDescriptor(p->conv);
}

void vae_cudnn_conv_free(vae_dconv *d)
{
    if (!d->dnn)
        return;
    for (int i = 0; i < d->dnn->n; i++)
        plan_free(&d->dnn->plan[i]);
    free(d->dnn);
    d->dnn = NULL;
}

static int plan_make(cuda_vae *cv, const vae_conv *L, const vae_dconv *d, const bf16 *in,
                     int tin, int h, int w, bf16 *out, int to, int ho, int wo, dnn_plan *p)
{
    cudnnHandle_t hd = (cudnnHandle_t)cv->dnn;
    p->tin = tin, p->h = h, p->w = w;
    DNN_TRY(cudnnCreateTensorDescriptor(&p->x));
    DNN_TRY(cudnnCreateTensorDescriptor(&p->y));
    DNN_TRY(cudnnCreateFilterDescriptor(&p->f));
    DNN_TRY(cudnnCreateConvolutionDescriptor(&p->conv));
    int xd[5] = {1, d->cinp, tin, h, w}, yd[5] = {1, d->coutp, to, ho, wo};
    int fd[5] = {d->coutp, d->cinp, L->kt, L->kh, L->kw};
    int pad[3] = {0, L->pad_top, L->pad_left}, stride[3] = {L->st, L->sh, L->sw}, dil[3] = {1, 1, 1};
    DNN_TRY(cudnnSetTensorNdDescriptorEx(p->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_BFLOAT16, 5, xd));
    DNN_TRY(cudnnSetTensorNdDescriptorEx(p->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_BFLOAT16, 5, yd));
    DNN_TRY(cudnnSetFilterNdDescriptor(p->f, CUDNN_DATA_BFLOAT16, CUDNN_TENSOR_NHWC, 5, fd));
    DNN_TRY(cudnnSetConvolutionNdDescriptor(p->conv, 3, pad, stride, dil, CUDNN_CROSS_CORRELATION,
                                            CUDNN_DATA_FLOAT));
    DNN_TRY(cudnnSetConvolutionMathType(p->conv, CUDNN_TENSOR_OP_MATH));
    int od[5];
    DNN_TRY(cudnnGetConvolutionNdForwardOutputDim(p->conv, p->x, p->f, 5, od));
    if (od[0] != 1 || od[1] != d->coutp || od[2] != to || od[3] != ho || od[4] != wo)
        return err_set(REEL_E_UNSUPPORTED, "vae: %s: cuDNN output [%d, %d, %d, %d] != [%d, %d, %d, %d]",
                       L->name, od[1], od[2], od[3], od[4], d->coutp, to, ho, wo);
    if (!cv->dnn_ws)
        TRY(vae_pool_alloc(cv, VAE_DNN_WS, &cv->dnn_ws, "cuDNN workspace"));
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0;
    DNN_TRY(cudnnFindConvolutionForwardAlgorithmEx(hd, p->x, in, p->f, d->w, p->conv, p->y, out,
                                                   CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf,
                                                   cv->dnn_ws, VAE_DNN_WS));
    for (int i = 0; i < n; i++) /* sorted fastest first */
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= VAE_DNN_WS) {
            p->algo = perf[i].algo;
            p->ws = perf[i].memory;
            return REEL_OK;
        }
    return err_set(REEL_E_UNSUPPORTED, "vae: %s: no cuDNN algorithm for input [%d, %d, %d, %d]",
                   L->name, d->cinp, tin, h, w);
}

int vae_cudnn_conv(cuda_vae *cv, const vae_conv *L, vae_dconv *d, const bf16 *in, int tin, int h,
                   int w, bf16 *out, int to, int ho, int wo)
{
    if (!d->dnn && !(d->dnn = (vae_dnn *)calloc(1, sizeof(vae_dnn))))
        return err_set(REEL_E_NOMEM, "vae: cuDNN plans");
    vae_dnn *dn = d->dnn;
    dnn_plan *p = NULL;
    for (int i = 0; i < dn->n && !p; i++)
        if (dn->plan[i].tin == tin && dn->plan[i].h == h && dn->plan[i].w == w)
            p = &dn->plan[i];
    if (!p) {
        if (dn->n == DNN_PLANS) { /* input sizes cycle (tiles): recycle the oldest */
            plan_free(&dn->plan[0]);
            memmove(&dn->plan[0], &dn->plan[1], (DNN_PLANS - 1) * sizeof(dnn_plan));
            dn->n--;
        }
        p = &dn->plan[dn->n];
        memset(p, 0, sizeof *p);
        int st = plan_make(cv, L, d, in, tin, h, w, out, to, ho, wo, p);
        if (st < 0) { /* whatever cuDNN refused, the implicit-GEMM engine can take over */
            plan_free(p);
            return REEL_E_UNSUPPORTED;
        }
        dn->n++;
    }
    const float one = 1.0f, zero = 0.0f;
    DNN_TRY(cudnnConvolutionForward((cudnnHandle_t)cv->dnn, &one, p->x, in, p->f, d->w, p->conv,
                                    p->algo, cv->dnn_ws, p->ws, &zero, p->y, out));
    return REEL_OK;
}
