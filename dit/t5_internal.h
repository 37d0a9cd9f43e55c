/* Inside the umT5 encoder (t5_encoder.h): its configuration, where each parameter lives in the
 * two key layouts, the weights as loaded on a backend, and the two ops the backend table lacks
 * (attention with a relative position bias and a key padding mask; the gated GELU), each with a
 * CPU reference (t5_cpu.c) and a CUDA version (t5_cuda.cu). */
#ifndef REEL_T5_INTERNAL_H
#define REEL_T5_INTERNAL_H

#include "arena.h"
#include "t5_encoder.h"
#include "weights.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Relative offsets key - query span [-(T5_MAX_TOKENS-1), T5_MAX_TOKENS-1]. */
#define T5_BIAS_SPAN (2 * T5_MAX_TOKENS - 1)

enum t5_layout {
    T5_LAYOUT_WAN, /* Wan t5.py: token_embedding, blocks.N.attn.q, blocks.N.ffn.gate.0, norm */
    T5_LAYOUT_HF   /* transformers (diffusers text_encoder/, ComfyUI): shared, encoder.block.N... */
};

typedef struct t5_config {
    enum t5_layout layout;
    char prefix[64]; /* prepended to every key (a checkpoint may nest the encoder) */
    int64_t vocab, dim, dim_attn, ffn;
    int heads, head_dim, layers, buckets, max_distance;
    int shared_bias; /* 1: one bias table for every layer (T5 v1.1, shared_pos); 0: umT5 */
    float eps;
    int has_config_json;
} t5_config;

enum t5_param {
    T5P_EMBED,
    T5P_NORM1,
    T5P_Q,
    T5P_K,
    T5P_V,
    T5P_O,
    T5P_REL, /* relative position embedding [buckets, heads] */
    T5P_NORM2,
    T5P_GATE, /* the GELU side of the gated feed-forward (Wan ffn.gate.0, HF wi_0) */
    T5P_UP,   /* the linear side (Wan ffn.fc1, HF wi_1) */
    T5P_DOWN, /* Wan ffn.fc2, HF wo */
    T5P_FINAL_NORM,
    T5P_SHARED_REL, /* the one table of a shared-position model */
    T5P_COUNT
};

/* Full key of parameter p (of layer `layer` where it is per layer) into buf. */
const char *t5_key(const t5_config *c, enum t5_param p, int layer, char *buf, size_t cap);

/* Layout, prefix and widths from the key names and shapes, then config.json beside the weights
 * (eps, max distance; widths there must agree with the shapes). Every tensor the forward reads
 * is checked here, so loading cannot meet a missing key or a wrong shape later. */
int t5_config_read(const weights *ws, t5_config *c);

/* Bidirectional relative position bucket of offset rel = key - query, as T5's
 * _relative_position_bucket computes it (float32 log, truncation toward zero). */
int t5_rel_bucket(int rel, int buckets, int max_distance);
/* table[h * T5_BIAS_SPAN + rel + T5_MAX_TOKENS - 1] = emb[bucket(rel) * heads + h]. */
void t5_bias_table(const float *emb, int buckets, int heads, int max_distance, float *table);

typedef struct t5_layer {
    tensor norm1, norm2; /* f32 [dim] */
    tensor wqkv;         /* [3 * dim_attn, dim]: q, k, v stacked, so one GEMM projects all three */
    tensor wo;           /* [dim, dim_attn] */
    tensor wi;           /* [2 * ffn, dim]: gate rows then up rows, one GEMM for both */
    tensor wdown;        /* [dim, ffn] */
    tensor bias;         /* f32 [heads, T5_BIAS_SPAN] */
} t5_layer;

struct t5_encoder {
    t5_config cfg;
    backend *be;
    weights *ws; /* kept open: the embedding stays in the mapping, rows are read per prompt */
    const weight_entry *embed;
    enum dtype wdt; /* weights and GEMM inputs: f32 on the CPU backend, bf16 on CUDA */
    t5_layer *layer;
    tensor final_norm;
    float *host_x; /* [T5_MAX_TOKENS, dim]: embedding rows on their way to the device */
    arena act;     /* activations of one prompt of up to T5_MAX_TOKENS */
    void *cuda;    /* t5_cuda state on the CUDA backend */
    char desc[256];
};

/* qkv [n, 3 * heads * head_dim] (q | k | v), bias f32 [heads, T5_BIAS_SPAN], keys >= n_valid
 * masked; out [n, heads * head_dim]. Scores are q.k (no scaling) + bias; softmax in fp32. */
int t5_attention(t5_encoder *t, const tensor *qkv, const tensor *bias, int n_valid, tensor *out);
/* g [n, 2F] -> out [n, F] = gelu_tanh(g[:, :F]) * g[:, F:]. */
int t5_gated_gelu(t5_encoder *t, const tensor *g, tensor *out);

/* CPU reference versions (f32). */
int t5_cpu_attention(backend *be, const tensor *qkv, const tensor *bias, int heads, int n_valid,
                     tensor *out);
int t5_cpu_gated_gelu(backend *be, const tensor *g, tensor *out);

/* CUDA versions (bf16 in and out, fp32 inside); stand-ins without CUDA in t5_cuda_nocuda.c.
 * scores f32 and probs bf16 are scratch of at least heads * n * n elements. */
int t5_cuda_open(backend *be, void **state);
void t5_cuda_close(void *state);
int t5_cuda_attention(void *state, backend *be, const tensor *qkv, const tensor *bias, int heads,
                      int n_valid, tensor *scores, tensor *probs, tensor *out);
int t5_cuda_gated_gelu(backend *be, const tensor *g, tensor *out);

#ifdef __cplusplus
}
#endif
#endif
