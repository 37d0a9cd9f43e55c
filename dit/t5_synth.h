/* Synthetic umT5-XXL checkpoints (Hugging Face names, XXL shapes, bf16 random values, one
 * .safetensors without config) for the benchmarks: no download needed. */
#ifndef REEL_T5_SYNTH_H
#define REEL_T5_SYNTH_H

#ifdef __cplusplus
extern "C" {
#endif

/* XXL shapes (Wan's umt5_xxl config) */
enum { T5_SYNTH_DIM = 4096, T5_SYNTH_FFN = 10240, T5_SYNTH_HEADS = 64, T5_SYNTH_BUCKETS = 32 };

/* layers encoder blocks, an embedding of vocab rows; overwrites path. */
int t5_synth_write(const char *path, int layers, int vocab);

#ifdef __cplusplus
}
#endif
#endif
