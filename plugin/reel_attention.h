/* reel attention plugin ABI.
 *
 * A plugin replaces the self-attention of a video transformer. It is told the model and video
 * geometry once (create), then called for every attention layer of every denoising step
 * (forward), told when a step ends (end_step), and destroyed. It keeps its own state between
 * calls (masks, caches). It sees Q, K, V, the token grid and the step, never the model.
 *
 * Built-in plugins are registered when reel starts; an external plugin is a shared library
 * exporting `reel_attn_plugin_entry` (REEL_ATTN_ENTRY) that returns its table. The table's
 * abi_version must equal REEL_ATTN_ABI_VERSION of the reel that loads it.
 *
 * Tensors: q [q_tokens, heads, head_dim], k and v [kv_tokens, heads, head_dim], each token's
 * heads*head_dim values contiguous, consecutive tokens *_row_stride elements apart; out is
 * packed [q_tokens, heads, head_dim]. dtype and device are fixed at create (bf16 on CUDA, f32
 * on CPU). Video tokens are ordered frame-major, then row, then column. Functions return 0 or
 * a negative reel_status and then write a one-line reason into err. */
#ifndef REEL_ATTENTION_H
#define REEL_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define REEL_ATTN_ABI_VERSION 1u
#define REEL_ATTN_ENTRY "reel_attn_plugin_entry"

enum reel_attn_dtype { REEL_ATTN_F32 = 0, REEL_ATTN_BF16 = 1 };
enum reel_attn_device { REEL_ATTN_CPU = 0, REEL_ATTN_CUDA = 1 };

/* Fixed for the life of a plugin instance. */
typedef struct reel_attn_config {
    uint32_t struct_size; /* sizeof(reel_attn_config) of the caller */
    int device;           /* enum reel_attn_device */
    int dtype;            /* enum reel_attn_dtype */
    int cuda_device;      /* device index when device == REEL_ATTN_CUDA */
    int model_dim, heads, head_dim;
    int grid_f, grid_h, grid_w; /* latent token grid: tokens = grid_f*grid_h*grid_w */
    int text_len;        /* text tokens after the video tokens in joint attention; 0 for Wan */
    int num_steps;       /* denoising steps of the run (for schedules such as dense-first) */
    int num_layers;      /* attention layers per forward */
    int chunk_frames;    /* autoregressive chunk length in latent frames; 0 = bidirectional */
} reel_attn_config;

/* One attention call. */
typedef struct reel_attn_args {
    uint32_t struct_size;
    const void *q, *k, *v;
    void *out;
    float *lse;              /* optional [heads, q_tokens] log-sum-exp (natural log, scaled
                                scores); NULL when not wanted */
    int64_t q_tokens, kv_tokens;
    int64_t q_row_stride, kv_row_stride;
    int64_t q_first, kv_first; /* grid index of the first query / key token (chunks, caches) */
    float scale;             /* softmax scale, 1/sqrt(head_dim) for Wan */
    int layer, step;
    float timestep;
    void *cuda_stream;       /* cudaStream_t to queue work on */
    int64_t last_key_copies; /* > 1: the last key/value row stands for this many identical rows
                                (cross-attention over a zero-padded text context, compacted);
                                0 or 1: for itself. reel passes > 1 only to the dense plugin */
} reel_attn_args;

typedef struct reel_attn_option {
    const char *name;
    const char *default_value;
    const char *help;
} reel_attn_option;

typedef struct reel_attn_plugin {
    uint32_t abi_version; /* REEL_ATTN_ABI_VERSION */
    uint32_t struct_size; /* sizeof(reel_attn_plugin) */
    const char *name;
    const char *description;
    const reel_attn_option *options; /* terminated by an entry whose name is NULL */
    /* options: "key=value,key=value" (may be empty). */
    int (*create)(const reel_attn_config *cfg, const char *options, void **state, char *err,
                  size_t err_size);
    int (*forward)(void *state, const reel_attn_args *args, char *err, size_t err_size);
    /* Called after each denoising step (step = the step that ended); may be NULL. */
    int (*end_step)(void *state, int step);
    void (*destroy)(void *state);
} reel_attn_plugin;

typedef const reel_attn_plugin *(*reel_attn_entry_fn)(void);

/* Registry (process-wide). Registering a name twice replaces the earlier table. */
int reel_attn_register(const reel_attn_plugin *plugin);
/* dlopen a plugin library, check its ABI version, register it; its name is returned. */
int reel_attn_load(const char *path, const char **name);
const reel_attn_plugin *reel_attn_find(const char *name);
int reel_attn_count(void);
const reel_attn_plugin *reel_attn_at(int index);

#ifdef __cplusplus
}
#endif
#endif
