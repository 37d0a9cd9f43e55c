/* The umT5 encoder's configuration: which key layout the checkpoint uses (model_detect.h finds
 * it and the key prefix), the widths from tensor shapes, and from config.json what shapes
 * cannot tell (layer_norm_epsilon, relative_attention_max_distance). Every tensor the forward
 * reads is checked here for presence and shape. */
#include "t5_internal.h"

#include "error.h"
#include "loader.h"
#include "model_detect.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T5_MAX_CONFIG_BYTES (1u << 20)

/* Key of each parameter in each layout; %d is the layer. */
static const char *const t5_names[2][T5P_COUNT] = {
    [T5_LAYOUT_WAN] =
        {
            [T5P_EMBED] = "token_embedding.weight",
            [T5P_NORM1] = "blocks.%d.norm1.weight",
            [T5P_Q] = "blocks.%d.attn.q.weight",
            [T5P_K] = "blocks.%d.attn.k.weight",
            [T5P_V] = "blocks.%d.attn.v.weight",
            [T5P_O] = "blocks.%d.attn.o.weight",
            [T5P_REL] = "blocks.%d.pos_embedding.embedding.weight",
            [T5P_NORM2] = "blocks.%d.norm2.weight",
            [T5P_GATE] = "blocks.%d.ffn.gate.0.weight",
            [T5P_UP] = "blocks.%d.ffn.fc1.weight",
            [T5P_DOWN] = "blocks.%d.ffn.fc2.weight",
            [T5P_FINAL_NORM] = "norm.weight",
            [T5P_SHARED_REL] = "pos_embedding.embedding.weight",
        },
    [T5_LAYOUT_HF] =
        {
            [T5P_EMBED] = "shared.weight",
            [T5P_NORM1] = "encoder.block.%d.layer.0.layer_norm.weight",
            [T5P_Q] = "encoder.block.%d.layer.0.SelfAttention.q.weight",
            [T5P_K] = "encoder.block.%d.layer.0.SelfAttention.k.weight",
            [T5P_V] = "encoder.block.%d.layer.0.SelfAttention.v.weight",
            [T5P_O] = "encoder.block.%d.layer.0.SelfAttention.o.weight",
            [T5P_REL] = "encoder.block.%d.layer.0.SelfAttention.relative_attention_bias.weight",
            [T5P_NORM2] = "encoder.block.%d.layer.1.layer_norm.weight",
            [T5P_GATE] = "encoder.block.%d.layer.1.DenseReluDense.wi_0.weight",
            [T5P_UP] = "encoder.block.%d.layer.1.DenseReluDense.wi_1.weight",
            [T5P_DOWN] = "encoder.block.%d.layer.1.DenseReluDense.wo.weight",
            [T5P_FINAL_NORM] = "encoder.final_layer_norm.weight",
            /* T5 v1.1 computes the bias in block 0 only and passes it on to the others */
            [T5P_SHARED_REL] =
                "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        },
};

const char *t5_key(const t5_config *c, enum t5_param p, int layer, char *buf, size_t cap)
{
    size_t pl = strlen(c->prefix);
    snprintf(buf, cap, "%s", c->prefix);
    if (pl < cap)
        snprintf(buf + pl, cap - pl, t5_names[c->layout][p], layer);
    return buf;
}

static const weight_entry *t5_find(const weights *ws, const t5_config *c, enum t5_param p,
                                   int layer)
{
    char key[256];
    return weights_find(ws, t5_key(c, p, layer, key, sizeof key));
}

/* The tensor must exist, be a float tensor and have shape [d0] or [d0, d1]. */
static int t5_expect(const weights *ws, const t5_config *c, enum t5_param p, int layer, int ndim,
                     int64_t d0, int64_t d1)
{
    char key[256];
    const weight_entry *e = t5_find(ws, c, p, layer);
    if (!e)
        return err_set(REEL_E_NOT_FOUND, "%s: umT5 tensor '%s' is missing", weights_path(ws),
                       t5_key(c, p, layer, key, sizeof key));
    int64_t shape[2] = {d0, d1};
    int st = tensor_expect(&e->t, e->name, DT_COUNT, ndim, shape);
    if (st < 0)
        return err_wrap(st, "%s: ", e->file);
    if (!dtype_is_float(e->t.dtype))
        return err_set(REEL_E_UNSUPPORTED, "%s: %s: dtype %s is not a float type", e->file, e->name,
                       dtype_name(e->t.dtype));
    /* float8 encoders (ComfyUI's *_fp8_e4m3fn_scaled) store a scale beside each matrix, which
     * the plain conversion would drop: refuse rather than encode with unscaled weights */
    if (e->t.dtype == DT_F8_E4M3 || e->t.dtype == DT_F8_E5M2)
        return err_set(
            REEL_E_UNSUPPORTED,
            "%s: %s: %s weights (scaled fp8) are not supported: use the bf16/fp16 encoder", e->file,
            e->name, dtype_name(e->t.dtype));
    return REEL_OK;
}

static int t5_json_int(const cJSON *o, const char *name, int *v)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(it))
        return 0;
    *v = (int)it->valuedouble;
    return 1;
}

/* config.json of a Hugging Face T5 encoder beside the weights, when there is one. A JSON file
 * there that is not a T5 config (no d_model) belongs to something else and is ignored. */
static int t5_read_config_json(const weights *ws, t5_config *c)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", weights_dir(ws));
    FILE *f = fopen(path, "rb");
    if (!f)
        return REEL_OK;
    fclose(f);
    char *text;
    size_t len;
    TRY(ld_read_text(path, T5_MAX_CONFIG_BYTES, &text, &len));
    cJSON *cfg = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(cfg)) {
        cJSON_Delete(cfg);
        return err_set(REEL_E_FORMAT, "%s: not a JSON object", path);
    }
    int st = REEL_OK, v;
    if (!t5_json_int(cfg, "d_model", &v))
        goto done;
    c->has_config_json = 1;
    /* widths: the shapes decide; a config that disagrees is for another model */
    static const struct {
        const char *name;
        size_t off;
        int wide;
    } widths[] = {
        {"d_model", offsetof(t5_config, dim), 1},
        {"d_ff", offsetof(t5_config, ffn), 1},
        {"num_heads", offsetof(t5_config, heads), 0},
        {"d_kv", offsetof(t5_config, head_dim), 0},
        {"relative_attention_num_buckets", offsetof(t5_config, buckets), 0},
    };
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        if (!t5_json_int(cfg, widths[i].name, &v))
            continue;
        const char *p = (const char *)c + widths[i].off;
        int64_t have = widths[i].wide ? *(const int64_t *)p : *(const int *)p;
        if (have != v) {
            st = err_set(REEL_E_FORMAT, "%s: %s is %d but the weights in %s have %lld", path,
                         widths[i].name, v, weights_path(ws), (long long)have);
            goto done;
        }
    }
    if (t5_json_int(cfg, "relative_attention_max_distance", &v))
        c->max_distance = v;
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(cfg, "layer_norm_epsilon");
    if (cJSON_IsNumber(eps))
        c->eps = (float)eps->valuedouble;
    const cJSON *ff = cJSON_GetObjectItemCaseSensitive(cfg, "feed_forward_proj");
    if (cJSON_IsString(ff) && strcmp(ff->valuestring, "gated-gelu") != 0) {
        char buf[64];
        st = err_set(REEL_E_UNSUPPORTED,
                     "%s: feed_forward_proj '%s': reel runs only umT5's gated-gelu feed-forward",
                     path, ld_printable(ff->valuestring, strlen(ff->valuestring), buf, sizeof buf));
    }
done:
    cJSON_Delete(cfg);
    return st;
}

int t5_config_read(const weights *ws, t5_config *c)
{
    memset(c, 0, sizeof *c);
    model_info mi;
    TRY(model_detect(ws, &mi));
    if (mi.kind != MODEL_UMT5_ENCODER)
        return err_set(REEL_E_FORMAT, "%s: not a umT5 text encoder (%s)", weights_path(ws),
                       mi.description);
    c->layout = mi.layout == LAYOUT_DIFFUSERS ? T5_LAYOUT_HF : T5_LAYOUT_WAN;
    snprintf(c->prefix, sizeof c->prefix, "%s", mi.prefix);
    c->eps = 1e-6f;        /* T5LayerNorm's default, Wan's and HF's umt5-xxl value */
    c->max_distance = 128; /* Wan's T5RelativeEmbedding max_dist, HF's default */

    const weight_entry *q = t5_find(ws, c, T5P_Q, 0), *emb = t5_find(ws, c, T5P_EMBED, 0);
    const weight_entry *up = t5_find(ws, c, T5P_UP, 0);
    while (t5_find(ws, c, T5P_Q, c->layers))
        c->layers++;
    /* umT5 gives every layer its own table; T5 v1.1 keeps one (top level in Wan's t5.py with
     * shared_pos, block 0 in Hugging Face's) */
    const weight_entry *rel = t5_find(ws, c, T5P_REL, 0);
    if (!rel || (c->layers > 1 && !t5_find(ws, c, T5P_REL, 1))) {
        rel = t5_find(ws, c, T5P_SHARED_REL, 0);
        c->shared_bias = 1;
    }
    char key[256];
    enum t5_param absent = !emb ? T5P_EMBED : !q ? T5P_Q : !up ? T5P_UP : T5P_SHARED_REL;
    if (!emb || !q || !up || !rel)
        return err_set(REEL_E_NOT_FOUND, "%s: umT5 tensor '%s' is missing", weights_path(ws),
                       t5_key(c, absent, 0, key, sizeof key));
    if (emb->t.ndim != 2 || q->t.ndim != 2 || up->t.ndim != 2 || rel->t.ndim != 2)
        return err_set(REEL_E_FORMAT,
                       "%s: umT5 embedding, q, feed-forward and bias tensors must be 2-D",
                       weights_path(ws));
    c->vocab = emb->t.shape[0];
    c->dim = emb->t.shape[1];
    c->dim_attn = q->t.shape[0];
    c->ffn = up->t.shape[0];
    c->buckets = (int)rel->t.shape[0];
    c->heads = (int)rel->t.shape[1];
    if (c->heads <= 0 || c->dim_attn % c->heads)
        return err_set(REEL_E_FORMAT, "%s: %s: %d heads do not divide the attention width %lld",
                       rel->file, rel->name, c->heads, (long long)c->dim_attn);
    c->head_dim = (int)(c->dim_attn / c->heads);

    TRY(t5_read_config_json(ws, c));
    if (c->buckets < 4 || c->buckets % 2 || c->max_distance <= c->buckets / 4)
        return err_set(REEL_E_FORMAT,
                       "%s: %d relative position buckets with max distance %d: need an even count "
                       ">= 4 and a distance beyond the exact range",
                       weights_path(ws), c->buckets, c->max_distance);
    if (!(c->eps > 0))
        return err_set(REEL_E_FORMAT, "%s: layer_norm_epsilon must be positive", weights_path(ws));

    int64_t d = c->dim, da = c->dim_attn, f = c->ffn;
    TRY(t5_expect(ws, c, T5P_FINAL_NORM, 0, 1, d, 0));
    if (c->shared_bias)
        TRY(t5_expect(ws, c, T5P_SHARED_REL, 0, 2, c->buckets, c->heads));
    for (int l = 0; l < c->layers; l++) {
        TRY(t5_expect(ws, c, T5P_NORM1, l, 1, d, 0));
        TRY(t5_expect(ws, c, T5P_Q, l, 2, da, d));
        TRY(t5_expect(ws, c, T5P_K, l, 2, da, d));
        TRY(t5_expect(ws, c, T5P_V, l, 2, da, d));
        TRY(t5_expect(ws, c, T5P_O, l, 2, d, da));
        if (!c->shared_bias)
            TRY(t5_expect(ws, c, T5P_REL, l, 2, c->buckets, c->heads));
        TRY(t5_expect(ws, c, T5P_NORM2, l, 1, d, 0));
        TRY(t5_expect(ws, c, T5P_GATE, l, 2, f, d));
        TRY(t5_expect(ws, c, T5P_UP, l, 2, f, d));
        TRY(t5_expect(ws, c, T5P_DOWN, l, 2, d, f));
    }
    return REEL_OK;
}
