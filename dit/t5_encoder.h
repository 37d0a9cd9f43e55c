/* The umT5-XXL text encoder of Wan2.1 (the encoder half of T5 v1.1 as umT5 configures it):
 *   x = embedding[ids]                                  (no scaling)
 *   per layer:  x += O(attention(RMS(x) Q, RMS(x) K, RMS(x) V) + relative position bias)
 *               x += W2(gelu_tanh(RMS(x) Wgate) * (RMS(x) W1))
 *   out = RMS(x) * final weight
 * Attention is not scaled by 1/sqrt(head_dim) (T5 folds it into the weights); every layer has its
 * own bias table over 32 bidirectional log-spaced distance buckets (umT5: shared_pos False).
 *
 * Loads Wan's `models_t5_umt5-xxl-enc-bf16.pth` (t5.py names), the Hugging Face / diffusers
 * `text_encoder/` folder (sharded safetensors and config.json) and ComfyUI's
 * `umt5_xxl_fp16.safetensors` (Hugging Face names in one file). Widths come from tensor shapes;
 * config.json, where present, gives the norm epsilon and the bucket distance limit.
 *
 * Precision: the residual stream, norms, attention scores and softmax are fp32 on every
 * backend. The CPU backend keeps weights and activations in fp32; the CUDA backend stores
 * weights and the GEMM inputs in bf16 (as Wan runs the model) with fp32 accumulation. */
#ifndef REEL_T5_ENCODER_H
#define REEL_T5_ENCODER_H

#include "backend.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Wan's text length: prompts are cut to it, and tables and buffers are sized for it. */
#define T5_MAX_TOKENS 512

typedef struct t5_encoder t5_encoder;

/* path: Wan's .pth, a .safetensors file, a *.safetensors.index.json, an HF/diffusers
 * text_encoder folder, or a Wan or diffusers model folder (its T5 .pth or text_encoder/ is
 * found). The backend must outlive the encoder. */
int t5_load(const char *path, backend *be, t5_encoder **out);
void t5_free(t5_encoder *t);

int t5_dim(const t5_encoder *t); /* model width: 4096 for XXL */
int t5_vocab(const t5_encoder *t);
/* One line: layout, widths, layers, heads, buckets. */
const char *t5_description(const t5_encoder *t);

/* ids[n] (1 <= n <= T5_MAX_TOKENS, already ending with EOS) -> out: host f32 [n, dim], the rows
 * Wan's T5EncoderModel returns for a prompt (its padding is masked from every real row, so the
 * real rows do not depend on it). */
int t5_encode(t5_encoder *t, const int32_t *ids, int n, float *out);

/* As Wan runs it: ids[n] holds n_valid prompt ids followed by padding; keys at positions
 * >= n_valid are masked out of every row's attention. out gets all n rows (the padded rows
 * hold what the reference computes there; Wan discards them). */
int t5_encode_masked(t5_encoder *t, const int32_t *ids, int n, int n_valid, float *out);

#ifdef __cplusplus
}
#endif
#endif
