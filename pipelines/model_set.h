/* Finding the four parts of a text-to-video model (DiT, umT5 encoder, tokenizer, VAE) inside a
 * folder as it is published:
 *   original Wan release   config.json + diffusion_pytorch_model*.safetensors,
 *                          models_t5_umt5-xxl-enc-bf16.pth, Wan2.1_VAE.pth, google/umt5-xxl/
 *   diffusers              model_index.json + transformer/, text_encoder/, tokenizer/, vae/
 *   ComfyUI                diffusion_models/wan2.1_t2v_*.safetensors,
 *                          text_encoders/umt5_xxl_*.safetensors, vae/wan_2.1_vae.safetensors
 *                          (ComfyUI ships no tokenizer files: give --tokenizer)
 * A part given explicitly wins over the folder. */
#ifndef REEL_MODEL_SET_H
#define REEL_MODEL_SET_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct model_set {
    char *dit, *text_encoder, *tokenizer, *vae;
    const char *layout; /* "original", "diffusers", "comfyui" or "explicit" */
} model_set;

/* dir may be NULL when every part is given. Each part found or given must exist; a part that
 * cannot be found gives REEL_E_NOT_FOUND naming the part, the folder and what was looked for. */
int model_set_resolve(const char *dir, const char *dit, const char *text_encoder,
                      const char *tokenizer, const char *vae, model_set *out);
void model_set_free(model_set *s);

#ifdef __cplusplus
}
#endif
#endif
