#include "wan_config.h"

#include "error.h"
#include "model_detect.h"
#include "wan_keys.h"
#include "weights.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int wan_config_preset(const char *name, wan_config *c)
{
    memset(c, 0, sizeof *c);
    c->head_dim = 128;
    c->in_dim = c->out_dim = 16;
    c->text_dim = 4096;
    c->freq_dim = 256;
    c->text_len = 512;
    c->patch[0] = 1;
    c->patch[1] = c->patch[2] = 2;
    c->eps = 1e-6f;
    if (strcmp(name, "1.3B") == 0) {
        c->dim = 1536, c->ffn_dim = 8960, c->heads = 12, c->layers = 30;
    } else if (strcmp(name, "14B") == 0) {
        c->dim = 5120, c->ffn_dim = 13824, c->heads = 40, c->layers = 40;
    } else {
        return err_set(REEL_E_INVALID, "unknown Wan preset '%s' (expected 1.3B or 14B)", name);
    }
    return REEL_OK;
}

int wan_config_validate(const wan_config *c)
{
    if (c->dim <= 0 || c->ffn_dim <= 0 || c->heads <= 0 || c->layers <= 0 || c->in_dim <= 0 ||
        c->out_dim <= 0 || c->text_dim <= 0 || c->freq_dim <= 0 || c->text_len <= 0 ||
        c->patch[0] <= 0 || c->patch[1] <= 0 || c->patch[2] <= 0)
        return err_set(REEL_E_INVALID, "Wan config has a non-positive size");
    if (c->dim % c->heads != 0)
        return err_set(REEL_E_INVALID, "Wan config: dim %d is not a multiple of %d heads", c->dim,
                       c->heads);
    if (c->head_dim != c->dim / c->heads)
        return err_set(REEL_E_INVALID, "Wan config: head_dim %d != dim %d / heads %d", c->head_dim,
                       c->dim, c->heads);
    /* 3D RoPE splits head_dim/2 complex pairs into t, h, w parts; each must be non-empty. */
    if (c->head_dim % 2 != 0 || c->head_dim < 6)
        return err_set(REEL_E_INVALID, "Wan config: head_dim %d cannot carry 3D RoPE", c->head_dim);
    if (c->freq_dim % 2 != 0)
        return err_set(REEL_E_INVALID, "Wan config: freq_dim %d must be even", c->freq_dim);
    if (!(c->eps > 0 && c->eps < 1))
        return err_set(REEL_E_INVALID, "Wan config: eps %g out of range", (double)c->eps);
    return REEL_OK;
}

const char *wan_config_describe(const wan_config *c, char *buf, int n)
{
    snprintf(buf, (size_t)n,
             "dim %d, ffn %d, %d heads x %d, %d layers, in/out %d/%d, text %dx%d, freq %d, "
             "patch %dx%dx%d, eps %g",
             c->dim, c->ffn_dim, c->heads, c->head_dim, c->layers, c->in_dim, c->out_dim,
             c->text_dim, c->text_len, c->freq_dim, c->patch[0], c->patch[1], c->patch[2],
             (double)c->eps);
    return buf;
}

static const weight_entry *find(const weights *ws, const model_info *mi, const char *canonical)
{
    char key[256];
    if (wan_key(mi, canonical, key, sizeof key) < 0)
        return NULL;
    return weights_find(ws, key);
}

static int need(const weights *ws, const model_info *mi, const char *canonical, int ndim,
                const weight_entry **out)
{
    *out = find(ws, mi, canonical);
    if (!*out) {
        char key[256];
        wan_key(mi, canonical, key, sizeof key);
        return err_set(REEL_E_FORMAT, "%s: Wan DiT tensor '%s' is missing", weights_path(ws), key);
    }
    if ((*out)->t.ndim != ndim)
        return err_set(REEL_E_FORMAT, "%s: '%s' has %d dims, expected %d", weights_path(ws),
                       (*out)->name, (*out)->t.ndim, ndim);
    return REEL_OK;
}

/* config.json next to the weights: the file's folder, or the folder itself. */
static char *find_config_json(const weights *ws)
{
    const char *p = weights_path(ws);
    size_t n = strlen(p) + 16;
    char *path = malloc(n);
    if (!path)
        return NULL;
    struct stat st;
    if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(path, n, "%s/config.json", p);
    } else {
        const char *slash = strrchr(p, '/');
        if (slash)
            snprintf(path, n, "%.*s/config.json", (int)(slash - p), p);
        else
            snprintf(path, n, "config.json");
    }
    if (stat(path, &st) != 0) {
        free(path);
        return NULL;
    }
    return path;
}

static int read_json_file(const char *path, cJSON **out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(REEL_E_IO, "%s: cannot open", path);
    char *buf = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        len = ftell(f);
    if (len < 0 || len > (1 << 20) || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return err_set(REEL_E_FORMAT, "%s: not a readable config of at most 1 MiB", path);
    }
    buf = malloc((size_t)len + 1);
    size_t got = buf ? fread(buf, 1, (size_t)len, f) : 0;
    fclose(f);
    if (!buf || got != (size_t)len) {
        free(buf);
        return err_set(REEL_E_IO, "%s: read failed", path);
    }
    buf[len] = 0;
    *out = cJSON_Parse(buf);
    free(buf);
    if (!*out || !cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        return err_set(REEL_E_FORMAT, "%s: not a JSON object", path);
    }
    return REEL_OK;
}

/* An integer field by any of its names (original and diffusers spell some differently). */
static int json_int(const cJSON *root, const char *a, const char *b, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, a);
    if (!v && b)
        v = cJSON_GetObjectItemCaseSensitive(root, b);
    if (!cJSON_IsNumber(v))
        return 0;
    *out = (int)v->valuedouble;
    return 1;
}

int wan_config_from_weights(const weights *ws, const model_info *mi, const char *config_json,
                            wan_config *c)
{
    const weight_entry *patch, *text0, *time0, *head, *ffn0;
    memset(c, 0, sizeof *c);
    TRY(need(ws, mi, "patch_embedding.weight", 5, &patch));
    TRY(need(ws, mi, "text_embedding.0.weight", 2, &text0));
    TRY(need(ws, mi, "time_embedding.0.weight", 2, &time0));
    TRY(need(ws, mi, "head.head.weight", 2, &head));
    TRY(need(ws, mi, "blocks.0.ffn.0.weight", 2, &ffn0));
    c->dim = (int)patch->t.shape[0];
    c->in_dim = (int)patch->t.shape[1];
    for (int i = 0; i < 3; i++)
        c->patch[i] = (int)patch->t.shape[2 + i];
    c->text_dim = (int)text0->t.shape[1];
    c->freq_dim = (int)time0->t.shape[1];
    c->ffn_dim = (int)ffn0->t.shape[0];
    int patch_vol = c->patch[0] * c->patch[1] * c->patch[2];
    if (head->t.shape[0] % patch_vol != 0)
        return err_set(REEL_E_FORMAT, "%s: '%s' has %lld outputs, not a multiple of the patch %d",
                       weights_path(ws), head->name, (long long)head->t.shape[0], patch_vol);
    c->out_dim = (int)(head->t.shape[0] / patch_vol);
    while (1) {
        char name[64];
        snprintf(name, sizeof name, "blocks.%d.self_attn.q.weight", c->layers);
        if (!find(ws, mi, name))
            break;
        c->layers++;
    }
    /* Shapes cannot tell the head count; the published models use 128-wide heads (ComfyUI
     * assumes the same), config.json overrides. */
    c->head_dim = 128;
    c->heads = c->dim / 128;
    c->text_len = 512;
    c->eps = 1e-6f;

    char *found = config_json ? NULL : find_config_json(ws);
    const char *cfg_path = config_json ? config_json : found;
    if (cfg_path) {
        cJSON *root = NULL;
        int st = read_json_file(cfg_path, &root);
        if (st < 0) {
            free(found);
            return st;
        }
        int heads = 0, head_dim = 0, v;
        json_int(root, "num_heads", "num_attention_heads", &heads);
        json_int(root, "attention_head_dim", NULL, &head_dim);
        if (heads > 0) {
            c->heads = heads;
            c->head_dim = c->dim / heads;
        } else if (head_dim > 0) {
            c->head_dim = head_dim;
            c->heads = c->dim / head_dim;
        }
        if (json_int(root, "text_len", NULL, &v))
            c->text_len = v;
        const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "eps");
        if (cJSON_IsNumber(eps))
            c->eps = (float)eps->valuedouble;
        /* Declared widths must agree with the tensors; a mismatch means the wrong config. */
        int declared;
        if ((json_int(root, "dim", NULL, &declared) && declared != c->dim) ||
            (json_int(root, "ffn_dim", NULL, &declared) && declared != c->ffn_dim) ||
            (json_int(root, "num_layers", NULL, &declared) && declared != c->layers) ||
            (json_int(root, "in_dim", "in_channels", &declared) && declared != c->in_dim) ||
            (json_int(root, "out_dim", "out_channels", &declared) && declared != c->out_dim)) {
            cJSON_Delete(root);
            st = err_set(REEL_E_FORMAT,
                         "%s: declares a size (dim/ffn_dim/num_layers/in/out) that the tensors "
                         "of %s do not have",
                         cfg_path, weights_path(ws));
            free(found);
            return st;
        }
        cJSON_Delete(root);
        free(found);
    }
    int st = wan_config_validate(c);
    if (st < 0)
        return err_wrap(st, "%s", weights_path(ws));
    return REEL_OK;
}
