/* What a weight set is: a Wan2.1 DiT (in one of four key layouts), a Wan VAE or a umT5 text
 * encoder, recognised by key names, with the DiT's widths read from tensor shapes.
 * A config.json beside the weights (original Wan or diffusers fields) fills what shapes cannot
 * tell (the head count); where it disagrees with the shapes, the shapes win and the description
 * says so. */
#ifndef REEL_MODEL_DETECT_H
#define REEL_MODEL_DETECT_H

#include "weights.h"

#ifdef __cplusplus
extern "C" {
#endif

enum model_kind { MODEL_UNKNOWN, MODEL_WAN_DIT, MODEL_WAN_VAE, MODEL_UMT5_ENCODER };
enum model_layout {
    LAYOUT_NONE,
    LAYOUT_WAN_ORIGINAL, /* Wan-Video/Wan2.1 module names (also ComfyUI files without a prefix) */
    LAYOUT_DIFFUSERS,    /* diffusers WanTransformer3DModel / AutoencoderKLWan, HF T5EncoderModel */
    LAYOUT_COMFYUI,      /* original names under "model.diffusion_model." */
    LAYOUT_SELF_FORCING  /* original names under "generator_ema.model." / "generator.model." / "model." */
};

typedef struct model_info {
    enum model_kind kind;
    enum model_layout layout;
    char prefix[64]; /* prepended to the layout's own names ("", "model.diffusion_model.", ...) */
    int dim, ffn_dim, heads, layers, in_dim, out_dim, text_dim, freq_dim; /* DiT; 0 when unknown */
    char description[256]; /* one line, e.g. "Wan2.1 DiT (original layout), dim 1536, ..." */
} model_info;

/* REEL_OK even for MODEL_UNKNOWN; fails only on a config.json that exists but is malformed. */
int model_detect(const weights *ws, model_info *out);

const char *model_kind_name(enum model_kind k);
const char *model_layout_name(enum model_layout l);

#ifdef __cplusplus
}
#endif
#endif
