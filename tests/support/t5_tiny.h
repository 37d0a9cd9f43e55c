/* Random-weight umT5 encoders for the T5 tests (tests/test_t5_cpu.c, tests/gpu/test_t5_cuda.c):
 * the parameters in memory, writers for the three checkpoint layouts reel reads, and a plain
 * double-precision forward written from Wan's t5.py (T5Encoder with shared_pos False), which
 * shares no code with dit/t5_*.c. */
#ifndef REEL_TEST_T5_TINY_H
#define REEL_TEST_T5_TINY_H

#include "dit/tensor.h"

#include <stdint.h>

typedef struct t5t_model {
    int dim, heads, head_dim, ffn, layers, vocab, buckets, max_distance;
    double eps;
    float *embed; /* [vocab, dim] */
    /* per layer: norms [dim]; q, k, v [dim, dim]; o [dim, dim]; rel [buckets, heads];
     * gate, up [ffn, dim]; down [dim, ffn] */
    float **norm1, **q, **k, **v, **o, **rel, **norm2, **gate, **up, **down;
    float *final_norm;
    int shared_bias; /* 0 (umT5): a bias table per layer; 1 (T5 v1.1): rel[0] serves every layer */
} t5t_model;

/* Random weights at the scales of Wan's init_weights (the bias table and the norm gains wider, so
 * that they matter), every value exactly representable in bf16 and in f16, so that one model
 * written in f32, bf16 and f16 loads to the same numbers. Attention width = dim. */
int t5t_make(t5t_model *m, int dim, int heads, int ffn, int layers, int vocab);
void t5t_free(t5t_model *m);

enum t5t_layout {
    T5T_WAN_PTH,    /* Wan's t5.py names in a torch.save zip (path: the .pth file) */
    T5T_HF_SHARDED, /* transformers names, 2 shards + index + config.json (path: a folder) */
    T5T_COMFY       /* transformers names in one .safetensors, no config (path: the file) */
};
/* Writes m in the layout, every tensor stored as dt (f32, bf16 or f16; f8_e4m3 writes ones, for
 * tests of the refusal), leaving out the tensor named omit (NULL: none). A shared bias table is
 * written where each layout keeps it: top-level pos_embedding (Wan, shared_pos) or block 0 only
 * (Hugging Face). */
int t5t_write(const t5t_model *m, enum t5t_layout layout, enum dtype dt, const char *path,
              const char *omit);

/* Bucket of key - query offset rel (bidirectional), in double precision. */
int t5t_ref_bucket(int rel, int buckets, int max_distance);

/* out [n, dim]: Wan's T5Encoder forward on ids[n], keys >= n_valid masked, in double. */
void t5t_reference(const t5t_model *m, const int32_t *ids, int n, int n_valid, double *out);

#endif
