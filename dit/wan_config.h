/* Wan DiT configuration: read from the checkpoint itself (tensor shapes first, config.json for
 * what shapes cannot tell: head count, eps, text length). Nothing is hard-coded but the two
 * published presets used by benchmarks. */
#ifndef REEL_WAN_CONFIG_H
#define REEL_WAN_CONFIG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weights weights;
typedef struct model_info model_info;

typedef struct wan_config {
    int dim, ffn_dim, heads, head_dim, layers;
    int in_dim, out_dim, text_dim, freq_dim, text_len;
    int patch[3]; /* t, h, w */
    float eps;
} wan_config;

/* Published presets ("1.3B", "14B"), for benchmarks with synthetic weights. */
int wan_config_preset(const char *name, wan_config *out);
/* Consistency: positive sizes, dim = heads * head_dim, head_dim even and splittable for RoPE. */
int wan_config_validate(const wan_config *c);
/* Shapes from the weights (through the layout mapping of mi), fields shapes cannot give from
 * config_json (may be NULL: the file is looked for next to the weights). */
int wan_config_from_weights(const weights *ws, const model_info *mi, const char *config_json,
                            wan_config *out);
/* "dim 1536, ffn 8960, 12 heads x 128, 30 layers, text 4096x512, patch 1x2x2" */
const char *wan_config_describe(const wan_config *c, char *buf, int n);

#ifdef __cplusplus
}
#endif
#endif
