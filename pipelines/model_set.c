#include "model_set.h"

#include "../dit/error.h"

#include <dirent.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* dir/sub when it exists, else NULL */
static char *child(const char *dir, const char *sub)
{
    char *p = join(dir, sub);
    if (p && !exists(p)) {
        free(p);
        p = NULL;
    }
    return p;
}

/* The first entry of dir/sub (sorted by name, so the choice is stable) matching one of the
 * patterns, in pattern order. */
static char *first_match(const char *dir, const char *sub, const char *const *patterns)
{
    char *folder = sub ? join(dir, sub) : strdup(dir);
    if (!folder)
        return NULL;
    struct dirent **list;
    int n = scandir(folder, &list, NULL, alphasort);
    char *found = NULL;
    for (int p = 0; patterns[p] && !found && n > 0; p++)
        for (int i = 0; i < n && !found; i++)
            if (fnmatch(patterns[p], list[i]->d_name, 0) == 0)
                found = join(folder, list[i]->d_name);
    for (int i = 0; i < n; i++)
        free(list[i]);
    if (n >= 0)
        free(list);
    free(folder);
    return found;
}

static int given(const char *what, const char *path, char **out)
{
    if (!exists(path))
        return err_set(REEL_E_NOT_FOUND, "%s '%s' does not exist", what, path);
    *out = strdup(path);
    return *out ? REEL_OK : err_set(REEL_E_NOMEM, "out of memory");
}

int model_set_resolve(const char *dir, const char *dit, const char *text_encoder,
                      const char *tokenizer, const char *vae, model_set *s)
{
    memset(s, 0, sizeof *s);
    int st = REEL_OK;
    if (dir && !exists(dir))
        return err_set(REEL_E_NOT_FOUND, "model folder '%s' does not exist", dir);
    s->layout = "explicit";
    if (dir) {
        char *probe;
        if ((probe = child(dir, "model_index.json")) || (probe = child(dir, "transformer"))) {
            s->layout = "diffusers";
            s->dit = child(dir, "transformer");
            s->text_encoder = child(dir, "text_encoder");
            s->tokenizer = child(dir, "tokenizer");
            s->vae = child(dir, "vae");
        } else if ((probe = child(dir, "diffusion_models"))) {
            static const char *const dits[] = {"wan2.1_t2v*.safetensors", "wan*.safetensors", "*.safetensors", NULL};
            static const char *const t5s[] = {"umt5*.safetensors", "*t5*.safetensors", NULL};
            static const char *const vaes[] = {"wan_2.1_vae*.safetensors", "wan*vae*.safetensors", "*.safetensors", NULL};
            static const char *const toks[] = {"spiece.model", "tokenizer.json", NULL};
            s->layout = "comfyui";
            s->dit = first_match(dir, "diffusion_models", dits);
            s->text_encoder = first_match(dir, "text_encoders", t5s);
            s->vae = first_match(dir, "vae", vaes);
            s->tokenizer = first_match(dir, "text_encoders", toks);
        } else {
            static const char *const dits[] = {"diffusion_pytorch_model.safetensors.index.json",
                                               "diffusion_pytorch_model.safetensors", NULL};
            static const char *const t5s[] = {"models_t5_umt5-xxl-enc-bf16.pth", "models_t5*.pth", NULL};
            static const char *const vaes[] = {"Wan2.1_VAE.pth", "*VAE*.pth", NULL};
            s->layout = "original";
            char *index_or_file = first_match(dir, NULL, dits);
            s->dit = index_or_file ? strdup(dir) : NULL; /* the folder: config.json sits beside */
            free(index_or_file);
            s->text_encoder = first_match(dir, NULL, t5s);
            s->vae = first_match(dir, NULL, vaes);
            s->tokenizer = child(dir, "google/umt5-xxl");
        }
        free(probe);
    }
    /* explicit parts win */
    const struct {
        const char *what, *arg;
        char **slot;
        const char *hint;
    } parts[] = {
        {"DiT", dit, &s->dit, "diffusion_pytorch_model*.safetensors, transformer/ or diffusion_models/*.safetensors (--dit)"},
        {"text encoder", text_encoder, &s->text_encoder, "models_t5_umt5-xxl-enc-bf16.pth, text_encoder/ or text_encoders/umt5*.safetensors (--text-encoder)"},
        {"tokenizer", tokenizer, &s->tokenizer, "google/umt5-xxl/, tokenizer/ (spiece.model or tokenizer.json) (--tokenizer)"},
        {"VAE", vae, &s->vae, "Wan2.1_VAE.pth, vae/ or vae/wan_2.1_vae.safetensors (--vae)"},
    };
    for (size_t i = 0; st >= 0 && i < sizeof parts / sizeof parts[0]; i++) {
        if (parts[i].arg) {
            free(*parts[i].slot);
            *parts[i].slot = NULL;
            st = given(parts[i].what, parts[i].arg, parts[i].slot);
        } else if (!*parts[i].slot) {
            st = err_set(REEL_E_NOT_FOUND, "no %s in '%s' (%s layout): looked for %s", parts[i].what,
                         dir ? dir : "(no folder given)", s->layout, parts[i].hint);
        }
    }
    if (st < 0)
        model_set_free(s);
    return st;
}

void model_set_free(model_set *s)
{
    free(s->dit);
    free(s->text_encoder);
    free(s->tokenizer);
    free(s->vae);
    memset(s, 0, sizeof *s);
}
