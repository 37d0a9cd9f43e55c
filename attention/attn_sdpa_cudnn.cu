/* cuDNN fused flash attention from C, through the cuDNN 9 backend graph API: one SDPA_FWD
 * operation (Q, K, V, O, scale, optional stats = LSE) in an operation graph, engine configs
 * from heuristics mode A, the first one that finalizes becomes the plan. Plans are cached per
 * shape and layout; descriptors live as long as their plan. Host code only (a .cu file so that
 * it builds only with CUDA and cuDNN). Test: tests/gpu/test_attn_kernel.c (dense:kernel=cudnn).
 *
 * Layout: cuDNN sees [batch 1, heads, tokens, head_dim] with strides (tokens*row, head_dim,
 * row, 1), which is reel's token-major [tokens, heads, head_dim] with any row stride; the
 * stats tensor [1, heads, q_tokens, 1] is the ABI's LSE [heads, q_tokens] (natural log). */
#include "attn_cudnn.h"

#include "../dit/cuda_check.h"

#include <cudnn.h>

#include <stdlib.h>
#include <string.h>

#define PLAN_CACHE 16

enum { UID_Q = 1, UID_K, UID_V, UID_O, UID_STATS, UID_SCALE };

typedef struct sdpa_plan {
    int64_t q_tokens, kv_tokens, q_stride, kv_stride;
    int heads, head_dim, with_stats;
    int status; /* REEL_OK, or why no plan could be made (remembered, not retried) */
    cudnnBackendDescriptor_t desc[24]; /* tensors, op, graph, heuristics, configs, plan */
    int ndesc;
    cudnnBackendDescriptor_t plan;
    int64_t workspace;
} sdpa_plan;

struct attn_cudnn {
    cudnnHandle_t handle;
    sdpa_plan plans[PLAN_CACHE];
    int nplans, next;
    void *workspace;
    size_t workspace_size;
};

static const char *cudnn_why(cudnnStatus_t s, char *buf, size_t n)
{
    char last[256] = "";
    cudnnGetLastErrorString(last, sizeof last);
    snprintf(buf, n, "%s%s%s", cudnnGetErrorString(s), last[0] ? ": " : "", last);
    return buf;
}

#define CUDNN_TRY(call)                                                                     \
    do {                                                                                    \
        cudnnStatus_t cudnn_s_ = (call);                                                    \
        if (cudnn_s_ != CUDNN_STATUS_SUCCESS) {                                             \
            char why_[400];                                                                 \
            return err_set(cudnn_s_ == CUDNN_STATUS_NOT_SUPPORTED ? REEL_E_UNSUPPORTED      \
                                                                  : REEL_E_DEVICE,          \
                           "cuDNN SDPA: %s: %s", #call, cudnn_why(cudnn_s_, why_,           \
                                                                  sizeof why_));            \
        }                                                                                   \
    } while (0)

static void plan_release(sdpa_plan *p)
{
    for (int i = p->ndesc - 1; i >= 0; i--)
        cudnnBackendDestroyDescriptor(p->desc[i]);
    p->ndesc = 0;
    p->plan = NULL;
}

static int make_desc(sdpa_plan *p, cudnnBackendDescriptorType_t type, cudnnBackendDescriptor_t *d)
{
    if (p->ndesc == (int)(sizeof p->desc / sizeof p->desc[0]))
        return err_set(REEL_E_INVALID, "cuDNN SDPA: too many descriptors");
    CUDNN_TRY(cudnnBackendCreateDescriptor(type, d));
    p->desc[p->ndesc++] = *d;
    return REEL_OK;
}

static int make_tensor(sdpa_plan *p, int64_t uid, const int64_t dims[4], const int64_t strides[4],
                       cudnnDataType_t dtype, bool by_value, cudnnBackendDescriptor_t *t)
{
    TRY(make_desc(p, CUDNN_BACKEND_TENSOR_DESCRIPTOR, t));
    int64_t align = by_value ? 4 : 16;
    CUDNN_TRY(cudnnBackendSetAttribute(*t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1,
                                       &dtype));
    CUDNN_TRY(cudnnBackendSetAttribute(*t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims));
    CUDNN_TRY(cudnnBackendSetAttribute(*t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides));
    CUDNN_TRY(cudnnBackendSetAttribute(*t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid));
    CUDNN_TRY(cudnnBackendSetAttribute(*t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1,
                                       &align));
    if (by_value)
        CUDNN_TRY(cudnnBackendSetAttribute(*t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1,
                                           &by_value));
    CUDNN_TRY(cudnnBackendFinalize(*t));
    return REEL_OK;
}

static int build_plan(attn_cudnn *c, sdpa_plan *p)
{
    const int64_t H = p->heads, D = p->head_dim, Lq = p->q_tokens, Lk = p->kv_tokens;
    const int64_t qd[4] = {1, H, Lq, D}, qs[4] = {Lq * p->q_stride, D, p->q_stride, 1};
    const int64_t kd[4] = {1, H, Lk, D}, ks[4] = {Lk * p->kv_stride, D, p->kv_stride, 1};
    const int64_t os[4] = {Lq * H * D, D, H * D, 1};
    const int64_t sd[4] = {1, H, Lq, 1}, ss[4] = {H * Lq, Lq, 1, 1};
    const int64_t one[4] = {1, 1, 1, 1};
    cudnnBackendDescriptor_t tq, tk, tv, to, tstats = NULL, tscale, op, graph, heur;
    TRY(make_tensor(p, UID_Q, qd, qs, CUDNN_DATA_BFLOAT16, false, &tq));
    TRY(make_tensor(p, UID_K, kd, ks, CUDNN_DATA_BFLOAT16, false, &tk));
    TRY(make_tensor(p, UID_V, kd, ks, CUDNN_DATA_BFLOAT16, false, &tv));
    TRY(make_tensor(p, UID_O, qd, os, CUDNN_DATA_BFLOAT16, false, &to));
    if (p->with_stats)
        TRY(make_tensor(p, UID_STATS, sd, ss, CUDNN_DATA_FLOAT, false, &tstats));
    TRY(make_tensor(p, UID_SCALE, one, one, CUDNN_DATA_FLOAT, true, &tscale));

    TRY(make_desc(p, CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR, &op));
    CUDNN_TRY(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_SDPA_FWD_QDESC,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tq));
    CUDNN_TRY(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_SDPA_FWD_KDESC,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tk));
    CUDNN_TRY(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_SDPA_FWD_VDESC,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tv));
    CUDNN_TRY(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_SDPA_FWD_ODESC,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &to));
    CUDNN_TRY(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_SDPA_FWD_SCALEDESC,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tscale));
    if (tstats)
        CUDNN_TRY(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_SDPA_FWD_STATSDESC,
                                           CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tstats));
    CUDNN_TRY(cudnnBackendFinalize(op));

    TRY(make_desc(p, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, &graph));
    CUDNN_TRY(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &op));
    CUDNN_TRY(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE,
                                       1, &c->handle));
    CUDNN_TRY(cudnnBackendFinalize(graph));

    TRY(make_desc(p, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur));
    cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
    CUDNN_TRY(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph));
    CUDNN_TRY(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1,
                                       &mode));
    CUDNN_TRY(cudnnBackendFinalize(heur));

    /* up to 4 candidate configs, in the heuristic's order */
    enum { MAX_CFG = 4 };
    cudnnBackendDescriptor_t cfg[MAX_CFG];
    int ncfg = 0;
    for (; ncfg < MAX_CFG; ncfg++)
        TRY(make_desc(p, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfg[ncfg]));
    int64_t got = 0;
    CUDNN_TRY(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, MAX_CFG, &got, cfg));
    cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
    for (int64_t i = 0; i < got; i++) {
        cudnnBackendDescriptor_t plan;
        TRY(make_desc(p, CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan));
        last = cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1,
                                        &c->handle);
        if (last == CUDNN_STATUS_SUCCESS)
            last = cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                            CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg[i]);
        if (last == CUDNN_STATUS_SUCCESS)
            last = cudnnBackendFinalize(plan);
        if (last != CUDNN_STATUS_SUCCESS)
            continue;
        CUDNN_TRY(cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                           CUDNN_TYPE_INT64, 1, &got, &p->workspace));
        p->plan = plan;
        return REEL_OK;
    }
    char why[400];
    return err_set(REEL_E_UNSUPPORTED, "cuDNN SDPA: no engine for %lld x %lld tokens, %d heads, "
                                       "head_dim %d: %s",
                   (long long)Lq, (long long)Lk, p->heads, p->head_dim,
                   cudnn_why(last, why, sizeof why));
}

static sdpa_plan *find_plan(attn_cudnn *c, const attn_flash_args *a)
{
    for (int i = 0; i < c->nplans; i++) {
        sdpa_plan *p = &c->plans[i];
        if (p->q_tokens == a->q_tokens && p->kv_tokens == a->kv_tokens &&
            p->q_stride == a->q_stride && p->kv_stride == a->kv_stride && p->heads == a->heads &&
            p->head_dim == a->head_dim && p->with_stats == (a->lse != NULL))
            return p;
    }
    sdpa_plan *p;
    if (c->nplans < PLAN_CACHE) {
        p = &c->plans[c->nplans++];
    } else {
        p = &c->plans[c->next];
        c->next = (c->next + 1) % PLAN_CACHE;
        plan_release(p);
    }
    memset(p, 0, sizeof *p);
    p->q_tokens = a->q_tokens, p->kv_tokens = a->kv_tokens;
    p->q_stride = a->q_stride, p->kv_stride = a->kv_stride;
    p->heads = a->heads, p->head_dim = a->head_dim, p->with_stats = a->lse != NULL;
    p->status = build_plan(c, p);
    if (p->status < 0)
        plan_release(p);
    return p;
}

extern "C" {

int attn_cudnn_create(attn_cudnn **out)
{
    *out = NULL;
    attn_cudnn *c = (attn_cudnn *)calloc(1, sizeof *c);
    if (!c)
        return err_set(REEL_E_NOMEM, "cuDNN SDPA: out of memory");
    cudnnStatus_t s = cudnnCreate(&c->handle);
    if (s != CUDNN_STATUS_SUCCESS) {
        char why[400];
        free(c);
        return err_set(REEL_E_DEVICE, "cuDNN SDPA: cudnnCreate: %s", cudnn_why(s, why, sizeof why));
    }
    *out = c;
    return REEL_OK;
}

int attn_cudnn_forward(attn_cudnn *c, const attn_flash_args *a)
{
    if (a->row_start || a->cols)
        return err_set(REEL_E_UNSUPPORTED, "cuDNN SDPA: block masks are not supported");
    if (a->last_key_copies > 1)
        return err_set(REEL_E_UNSUPPORTED, "cuDNN SDPA: a repeated last key is not supported");
    if (((uintptr_t)a->q | (uintptr_t)a->k | (uintptr_t)a->v | (uintptr_t)a->out) % 16 ||
        a->q_stride % 8 || a->kv_stride % 8)
        return err_set(REEL_E_UNSUPPORTED, "cuDNN SDPA: q/k/v/out must be 16-byte aligned");
    sdpa_plan *p = find_plan(c, a);
    if (p->status < 0) {
        char why[128];
        snprintf(why, sizeof why, "%lld x %lld tokens, %d heads", (long long)a->q_tokens,
                 (long long)a->kv_tokens, a->heads);
        return err_set(p->status, "cuDNN SDPA: no plan for %s (an earlier attempt failed)", why);
    }
    if ((size_t)p->workspace > c->workspace_size) {
        if (c->workspace)
            CUDA_TRY(cudaFree(c->workspace));
        c->workspace = NULL;
        c->workspace_size = 0;
        CUDA_TRY(cudaMalloc(&c->workspace, (size_t)p->workspace));
        c->workspace_size = (size_t)p->workspace;
    }
    CUDNN_TRY(cudnnSetStream(c->handle, (cudaStream_t)a->stream));
    float scale = a->scale;
    int64_t uids[6] = {UID_Q, UID_K, UID_V, UID_O, UID_SCALE, UID_STATS};
    void *ptrs[6] = {(void *)a->q, (void *)a->k, (void *)a->v, a->out, &scale, a->lse};
    int64_t n = a->lse ? 6 : 5;
    cudnnBackendDescriptor_t pack;
    CUDNN_TRY(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack));
    cudnnStatus_t s = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS,
                                               CUDNN_TYPE_INT64, n, uids);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                     CUDNN_TYPE_VOID_PTR, n, ptrs);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR,
                                     1, &c->workspace);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendFinalize(pack);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendExecute(c->handle, p->plan, pack);
    cudnnBackendDestroyDescriptor(pack);
    if (s != CUDNN_STATUS_SUCCESS) {
        char why[400];
        return err_set(REEL_E_DEVICE, "cuDNN SDPA: execute: %s", cudnn_why(s, why, sizeof why));
    }
    return REEL_OK;
}

void attn_cudnn_free(attn_cudnn *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nplans; i++)
        plan_release(&c->plans[i]);
    if (c->workspace)
        cudaFree(c->workspace);
    cudnnDestroy(c->handle);
    free(c);
}

} /* extern "C" */
