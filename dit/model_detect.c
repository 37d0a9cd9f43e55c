#include "model_detect.h"

#include "error.h"
#include "loader.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MD_MAX_CONFIG_BYTES (1u << 20)

const char *model_kind_name(enum model_kind k)
{
    switch (k) {
    case MODEL_WAN_DIT: return "wan-dit";
    case MODEL_WAN_VAE: return "wan-vae";
    case MODEL_UMT5_ENCODER: return "umt5-encoder";
    default: return "unknown";
    }
}

const char *model_layout_name(enum model_layout l)
{
    switch (l) {
    case LAYOUT_WAN_ORIGINAL: return "original";
    case LAYOUT_DIFFUSERS: return "diffusers";
    case LAYOUT_COMFYUI: return "comfyui";
    case LAYOUT_SELF_FORCING: return "self-forcing";
    default: return "none";
    }
}

/* ---- key lookups under a prefix ---------------------------------------------------------- */

static const weight_entry *md_get(const weights *ws, const char *prefix, const char *key)
{
    char name[512];
    snprintf(name, sizeof name, "%s%s", prefix, key);
    return weights_find(ws, name);
}

/* Dimension d of prefix+key, or 0 when the tensor is absent or has fewer dims. */
static int64_t md_dim(const weights *ws, const char *prefix, const char *key, int d)
{
    const weight_entry *e = md_get(ws, prefix, key);
    return e && d < e->t.ndim ? e->t.shape[d] : 0;
}

/* Finds a key that ends with `marker` after a prefix that is empty or ends in '.', and whose
 * `sibling` exists under the same prefix. A prefix starting with "generator_ema." wins over
 * others, since those are the weights Self-Forcing samples with. */
static int md_find_prefix(const weights *ws, const char *marker, const char *sibling, char *prefix,
                          size_t cap)
{
    size_t ml = strlen(marker);
    int found = 0;
    for (int i = 0; i < weights_count(ws); i++) {
        const char *n = weights_at(ws, i)->name;
        size_t nl = strlen(n);
        if (nl < ml || strcmp(n + nl - ml, marker) || (nl > ml && n[nl - ml - 1] != '.'))
            continue;
        size_t pl = nl - ml;
        if (pl >= cap)
            continue;
        char p[64];
        memcpy(p, n, pl);
        p[pl] = 0;
        if (!md_get(ws, p, sibling))
            continue;
        if (!found || !strncmp(p, "generator_ema.", 14)) {
            memcpy(prefix, p, pl + 1);
            found = 1;
        }
    }
    return found;
}

/* Highest N + 1 over keys prefix + stem + "N." ..., and whether every N below it occurs. */
static int md_count_blocks(const weights *ws, const char *prefix, const char *stem, int *complete)
{
    char head[160];
    int hl = snprintf(head, sizeof head, "%s%s", prefix, stem);
    int max = -1;
    enum { MD_MAX_BLOCKS = 4096 };
    unsigned char *seen = calloc(MD_MAX_BLOCKS, 1);
    for (int i = 0; i < weights_count(ws) && seen; i++) {
        const char *n = weights_at(ws, i)->name;
        if (strncmp(n, head, (size_t)hl))
            continue;
        char *end;
        long b = strtol(n + hl, &end, 10);
        if (end == n + hl || *end != '.' || b < 0 || b >= MD_MAX_BLOCKS)
            continue;
        seen[b] = 1;
        if (b > max)
            max = (int)b;
    }
    *complete = 1;
    for (int b = 0; b <= max && seen; b++)
        if (!seen[b])
            *complete = 0;
    free(seen);
    return max + 1;
}

static int64_t md_params_under(const weights *ws, const char *prefix)
{
    size_t pl = strlen(prefix);
    int64_t total = 0;
    for (int i = 0; i < weights_count(ws); i++) {
        const weight_entry *e = weights_at(ws, i);
        if (!strncmp(e->name, prefix, pl))
            total += tensor_numel(&e->t);
    }
    return total;
}

/* ---- config.json ------------------------------------------------------------------------- */

static int md_cfg_int(const cJSON *cfg, const char *key, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 1 ||
        v->valuedouble > 1e9 || v->valuedouble != floor(v->valuedouble))
        return 0;
    *out = (int)v->valuedouble;
    return 1;
}

typedef struct md_notes {
    char text[160];
    size_t used;
} md_notes;

static void md_note(md_notes *n, const char *fmt, ...) ERR_PRINTF(2, 3);
static void md_note(md_notes *n, const char *fmt, ...)
{
    if (n->used >= sizeof n->text)
        return;
    va_list ap;
    va_start(ap, fmt);
    n->used += (size_t)vsnprintf(n->text + n->used, sizeof n->text - n->used, fmt, ap);
    va_end(ap);
}

/* Fills a field from config.json when shapes could not tell it; notes a disagreement. */
static void md_merge(md_notes *notes, const char *name, int *field, int cfg)
{
    if (*field == 0)
        *field = cfg;
    else if (*field != cfg)
        md_note(notes, "; config.json says %s %d, shapes say %d (shapes win)", name, cfg, *field);
}

static int md_read_config(const weights *ws, model_info *mi, md_notes *notes, int *heads_from_cfg)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", weights_dir(ws));
    FILE *f = fopen(path, "rb");
    if (!f)
        return REEL_OK; /* optional */
    fclose(f);
    char *text;
    size_t len;
    TRY(ld_read_text(path, MD_MAX_CONFIG_BYTES, &text, &len));
    cJSON *cfg = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(cfg)) {
        cJSON_Delete(cfg);
        return err_set(REEL_E_FORMAT, "%s: not a JSON object", path);
    }
    int v, hd;
    if (md_cfg_int(cfg, "num_attention_heads", &v) && md_cfg_int(cfg, "attention_head_dim", &hd)) {
        md_merge(notes, "dim", &mi->dim, v * hd); /* diffusers names */
        *heads_from_cfg = v;
    }
    if (md_cfg_int(cfg, "num_heads", &v))
        *heads_from_cfg = v;
    if (md_cfg_int(cfg, "dim", &v))
        md_merge(notes, "dim", &mi->dim, v);
    if (md_cfg_int(cfg, "ffn_dim", &v))
        md_merge(notes, "ffn_dim", &mi->ffn_dim, v);
    if (md_cfg_int(cfg, "num_layers", &v))
        md_merge(notes, "num_layers", &mi->layers, v);
    if (md_cfg_int(cfg, "in_dim", &v) || md_cfg_int(cfg, "in_channels", &v))
        md_merge(notes, "in_dim", &mi->in_dim, v);
    if (md_cfg_int(cfg, "out_dim", &v) || md_cfg_int(cfg, "out_channels", &v))
        md_merge(notes, "out_dim", &mi->out_dim, v);
    if (md_cfg_int(cfg, "text_dim", &v))
        md_merge(notes, "text_dim", &mi->text_dim, v);
    if (md_cfg_int(cfg, "freq_dim", &v))
        md_merge(notes, "freq_dim", &mi->freq_dim, v);
    cJSON_Delete(cfg);
    return REEL_OK;
}

/* ---- the three model kinds --------------------------------------------------------------- */

static enum model_layout md_layout_of_prefix(const char *p)
{
    size_t n = strlen(p);
    if (n >= 16 && !strcmp(p + n - 16, "diffusion_model."))
        return LAYOUT_COMFYUI;
    if (!strcmp(p, "model.") || !strncmp(p, "generator", 9))
        return LAYOUT_SELF_FORCING;
    return LAYOUT_WAN_ORIGINAL;
}

static int md_dit(const weights *ws, model_info *mi)
{
    /* key names per layout: patch embedding is shared; the rest differ */
    static const struct {
        const char *marker, *sibling, *ffn, *head, *text, *time, *block_stem, *block_probe;
    } lay[2] = {
        {"head.modulation", "blocks.0.self_attn.q.weight", "blocks.0.ffn.0.weight", "head.head.weight",
         "text_embedding.0.weight", "time_embedding.0.weight", "blocks.", "self_attn.q.weight"},
        {"condition_embedder.time_proj.weight", "blocks.0.attn1.to_q.weight",
         "blocks.0.ffn.net.0.proj.weight", "proj_out.weight",
         "condition_embedder.text_embedder.linear_1.weight",
         "condition_embedder.time_embedder.linear_1.weight", "blocks.", "attn1.to_q.weight"},
    };
    int which = -1;
    for (int k = 0; k < 2 && which < 0; k++)
        if (md_find_prefix(ws, lay[k].marker, lay[k].sibling, mi->prefix, sizeof mi->prefix))
            which = k;
    if (which < 0)
        return 0;
    mi->kind = MODEL_WAN_DIT;
    mi->layout = which == 1 ? LAYOUT_DIFFUSERS : md_layout_of_prefix(mi->prefix);
    const char *p = mi->prefix;
    mi->dim = (int)md_dim(ws, p, "patch_embedding.weight", 0);
    mi->in_dim = (int)md_dim(ws, p, "patch_embedding.weight", 1);
    int64_t patch = md_dim(ws, p, "patch_embedding.weight", 2) * md_dim(ws, p, "patch_embedding.weight", 3) *
                    md_dim(ws, p, "patch_embedding.weight", 4);
    int64_t head_out = md_dim(ws, p, lay[which].head, 0);
    mi->out_dim = patch > 0 && head_out % patch == 0 ? (int)(head_out / patch) : 0;
    mi->ffn_dim = (int)md_dim(ws, p, lay[which].ffn, 0);
    mi->text_dim = (int)md_dim(ws, p, lay[which].text, 1);
    mi->freq_dim = (int)md_dim(ws, p, lay[which].time, 1);
    int complete;
    mi->layers = md_count_blocks(ws, p, lay[which].block_stem, &complete);
    return complete ? 1 : 2;
}

static int md_vae(const weights *ws, model_info *mi, int *z_dim, int *has_encoder)
{
    static const char *names[2][3] = {
        {"decoder.conv1.weight", "conv2.weight", "encoder.conv1.weight"},
        {"decoder.conv_in.weight", "post_quant_conv.weight", "encoder.conv_in.weight"},
    };
    for (int k = 0; k < 2; k++)
        if (md_find_prefix(ws, names[k][0], names[k][1], mi->prefix, sizeof mi->prefix)) {
            mi->kind = MODEL_WAN_VAE;
            mi->layout = k ? LAYOUT_DIFFUSERS : LAYOUT_WAN_ORIGINAL;
            *z_dim = (int)md_dim(ws, mi->prefix, names[k][1], 0);
            *has_encoder = md_get(ws, mi->prefix, names[k][2]) != NULL;
            return 1;
        }
    return 0;
}

static int md_t5(const weights *ws, model_info *mi, int *dim, int *heads, int *layers, int *vocab)
{
    static const struct {
        const char *marker, *sibling, *embed, *stem, *relpos;
    } lay[2] = {
        {"blocks.0.attn.q.weight", "token_embedding.weight", "token_embedding.weight", "blocks.",
         "blocks.0.pos_embedding.embedding.weight"},
        {"encoder.block.0.layer.0.SelfAttention.q.weight", "encoder.final_layer_norm.weight",
         "shared.weight", "encoder.block.",
         "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"},
    };
    for (int k = 0; k < 2; k++)
        if (md_find_prefix(ws, lay[k].marker, lay[k].sibling, mi->prefix, sizeof mi->prefix)) {
            mi->kind = MODEL_UMT5_ENCODER;
            mi->layout = k ? LAYOUT_DIFFUSERS : LAYOUT_WAN_ORIGINAL;
            *vocab = (int)md_dim(ws, mi->prefix, lay[k].embed, 0);
            *dim = (int)md_dim(ws, mi->prefix, lay[k].marker, 1);
            *heads = (int)md_dim(ws, mi->prefix, lay[k].relpos, 1);
            int complete;
            *layers = md_count_blocks(ws, mi->prefix, lay[k].stem, &complete);
            return 1;
        }
    return 0;
}

int model_detect(const weights *ws, model_info *out)
{
    memset(out, 0, sizeof *out);
    model_info *mi = out;
    char *d = mi->description;
    size_t cap = sizeof mi->description;
    int dit = md_dit(ws, mi);
    if (dit) {
        md_notes notes = {{0}, 0};
        int cfg_heads = 0;
        TRY(md_read_config(ws, mi, &notes, &cfg_heads));
        const char *heads_note = "";
        if (cfg_heads > 0 && mi->dim % cfg_heads == 0) {
            mi->heads = cfg_heads;
        } else if (mi->dim % 128 == 0) { /* Wan's head dim; shapes cannot tell the head count */
            mi->heads = mi->dim / 128;
            heads_note = " (head dim 128 assumed)";
        }
        if (dit == 2)
            md_note(&notes, "; some blocks below %d are missing", mi->layers);
        if (!strncmp(mi->prefix, "generator_ema.", 14))
            md_note(&notes, "; EMA weights (generator_ema)");
        double params = (double)md_params_under(ws, mi->prefix);
        char pstr[32], hstr[48];
        if (params >= 1e9)
            snprintf(pstr, sizeof pstr, "%.2fB", params / 1e9);
        else if (params >= 1e6)
            snprintf(pstr, sizeof pstr, "%.1fM", params / 1e6);
        else
            snprintf(pstr, sizeof pstr, "%.0f", params);
        if (mi->heads > 0)
            snprintf(hstr, sizeof hstr, "%d heads%s", mi->heads, heads_note);
        else
            snprintf(hstr, sizeof hstr, "heads unknown");
        snprintf(d, cap,
                 "Wan2.1 DiT (%s layout), dim %d, %d layers, %s, ffn %d, in %d, out %d, text %d, freq %d, %s parameters%s",
                 model_layout_name(mi->layout), mi->dim, mi->layers, hstr, mi->ffn_dim, mi->in_dim,
                 mi->out_dim, mi->text_dim, mi->freq_dim, pstr, notes.text);
        return REEL_OK;
    }
    int z = 0, enc = 0;
    if (md_vae(ws, mi, &z, &enc)) {
        snprintf(d, cap, "Wan VAE (%s layout), z_dim %d, %s", model_layout_name(mi->layout), z,
                 enc ? "encoder and decoder" : "decoder only");
        return REEL_OK;
    }
    int dim = 0, heads = 0, layers = 0, vocab = 0;
    if (md_t5(ws, mi, &dim, &heads, &layers, &vocab)) {
        snprintf(d, cap, "umT5 encoder (%s layout), dim %d, %d layers, %d heads, vocab %d",
                 mi->layout == LAYOUT_DIFFUSERS ? "Hugging Face" : "Wan t5.py", dim, layers, heads,
                 vocab);
        return REEL_OK;
    }
    memset(out, 0, sizeof *out);
    snprintf(d, cap, "unknown model (no Wan DiT, Wan VAE or umT5 key names found)");
    return REEL_OK;
}
