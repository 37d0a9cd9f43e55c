/* model_detect on tiny checkpoints written in each layout: Wan DiT (original with config.json,
 * diffusers sharded with its config, ComfyUI prefixed without config, Self-Forcing nested .pt,
 * a config that disagrees with the shapes), Wan VAE (original, diffusers), umT5 (Wan t5.py, HF),
 * an unknown model and a malformed config.json; then `reel info --json` on one of them. */
#include "check.h"
#include "support/model_writer.h"

#include "dit/error.h"
#include "dit/model_detect.h"
#include "dit/weights.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { MAX_T = 1200 };

typedef struct keyset {
    tw_tensor t[MAX_T];
    char names[MAX_T][256];
    int n;
} keyset;

static float *zeros; /* big enough for every tensor written here */

static void add(keyset *k, const char *prefix, const char *name, enum dtype dt, int ndim,
                int64_t a, int64_t b, int64_t c, int64_t d, int64_t e)
{
    tw_tensor *t = &k->t[k->n];
    snprintf(k->names[k->n], sizeof k->names[k->n], "%s%s", prefix, name);
    t->name = k->names[k->n];
    t->dtype = dt;
    t->ndim = ndim;
    int64_t s[5] = {a, b, c, d, e};
    memcpy(t->shape, s, sizeof s);
    t->data = zeros;
    k->n++;
}

typedef struct dit_dims {
    int dim, ffn, layers, in, out, text, freq;
} dit_dims;

/* Every tensor of a Wan2.1 T2V DiT (spec wan_dit_detail.md §2.1, §2.4) in one of the two naming
 * schemes, under prefix. */
static void dit_keys(keyset *k, int diffusers, const char *prefix, dit_dims m, enum dtype dt)
{
    int64_t D = m.dim, F = m.ffn;
    char name[96];
    add(k, prefix, "patch_embedding.weight", dt, 5, D, m.in, 1, 2, 2);
    add(k, prefix, "patch_embedding.bias", dt, 1, D, 0, 0, 0, 0);
    static const char *top[2][6] = {
        {"text_embedding.0", "text_embedding.2", "time_embedding.0", "time_embedding.2",
         "time_projection.1", "head.head"},
        {"condition_embedder.text_embedder.linear_1", "condition_embedder.text_embedder.linear_2",
         "condition_embedder.time_embedder.linear_1", "condition_embedder.time_embedder.linear_2",
         "condition_embedder.time_proj", "proj_out"},
    };
    const int64_t out_rows[6] = {D, D, D, D, 6 * D, 4 * m.out}, in_cols[6] = {m.text, D, m.freq, D, D, D};
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "%s.weight", top[diffusers][i]);
        add(k, prefix, name, dt, 2, out_rows[i], in_cols[i], 0, 0, 0);
        snprintf(name, sizeof name, "%s.bias", top[diffusers][i]);
        add(k, prefix, name, dt, 1, out_rows[i], 0, 0, 0, 0);
    }
    add(k, prefix, diffusers ? "scale_shift_table" : "head.modulation", dt, 3, 1, 2, D, 0, 0);
    for (int b = 0; b < m.layers; b++) {
        char bp[128];
        snprintf(bp, sizeof bp, "%sblocks.%d.", prefix, b);
        add(k, bp, diffusers ? "scale_shift_table" : "modulation", dt, 3, 1, 6, D, 0, 0);
        for (int a = 0; a < 2; a++) {
            static const char *attn[2][2] = {{"self_attn", "cross_attn"}, {"attn1", "attn2"}};
            static const char *proj[2][4] = {{"q", "k", "v", "o"}, {"to_q", "to_k", "to_v", "to_out.0"}};
            for (int p = 0; p < 4; p++) {
                snprintf(name, sizeof name, "%s.%s.weight", attn[diffusers][a], proj[diffusers][p]);
                add(k, bp, name, dt, 2, D, D, 0, 0, 0);
                snprintf(name, sizeof name, "%s.%s.bias", attn[diffusers][a], proj[diffusers][p]);
                add(k, bp, name, dt, 1, D, 0, 0, 0, 0);
            }
            snprintf(name, sizeof name, "%s.norm_q.weight", attn[diffusers][a]);
            add(k, bp, name, dt, 1, D, 0, 0, 0, 0);
            snprintf(name, sizeof name, "%s.norm_k.weight", attn[diffusers][a]);
            add(k, bp, name, dt, 1, D, 0, 0, 0, 0);
        }
        add(k, bp, diffusers ? "norm2.weight" : "norm3.weight", dt, 1, D, 0, 0, 0, 0);
        add(k, bp, diffusers ? "norm2.bias" : "norm3.bias", dt, 1, D, 0, 0, 0, 0);
        add(k, bp, diffusers ? "ffn.net.0.proj.weight" : "ffn.0.weight", dt, 2, F, D, 0, 0, 0);
        add(k, bp, diffusers ? "ffn.net.0.proj.bias" : "ffn.0.bias", dt, 1, F, 0, 0, 0, 0);
        add(k, bp, diffusers ? "ffn.net.2.weight" : "ffn.2.weight", dt, 2, D, F, 0, 0, 0);
        add(k, bp, diffusers ? "ffn.net.2.bias" : "ffn.2.bias", dt, 1, D, 0, 0, 0, 0);
    }
}

static const char *case_dir(const char *name)
{
    static char dir[600];
    snprintf(dir, sizeof dir, "%s", check_path(name));
    mkdir(dir, 0755);
    return dir;
}

static const char *in_dir(const char *dir, const char *file)
{
    static char path[800];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return path;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s", path);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Opens path, detects, and checks kind, layout, prefix and (for a DiT) the widths. */
static void expect(const char *label, const char *path, enum model_kind kind, enum model_layout layout,
                   const char *prefix, const dit_dims *m, int heads, const char *phrase)
{
    weights *ws = NULL;
    CHECK_OK(weights_open(path, &ws));
    if (!ws)
        return;
    model_info mi;
    CHECK_OK(model_detect(ws, &mi));
    printf("%-22s %s\n", label, mi.description);
    CHECK(mi.kind == kind, "%s: kind %s", label, model_kind_name(mi.kind));
    CHECK(mi.layout == layout, "%s: layout %s", label, model_layout_name(mi.layout));
    CHECK(!strcmp(mi.prefix, prefix), "%s: prefix '%s', want '%s'", label, mi.prefix, prefix);
    if (m) {
        CHECK(mi.dim == m->dim && mi.ffn_dim == m->ffn && mi.layers == m->layers && mi.in_dim == m->in &&
                  mi.out_dim == m->out && mi.text_dim == m->text && mi.freq_dim == m->freq,
              "%s: dims %d %d %d %d %d %d %d", label, mi.dim, mi.ffn_dim, mi.layers, mi.in_dim,
              mi.out_dim, mi.text_dim, mi.freq_dim);
        CHECK(mi.heads == heads, "%s: heads %d, want %d", label, mi.heads, heads);
    }
    CHECK(!phrase || strstr(mi.description, phrase), "%s: description lacks '%s': %s", label, phrase,
          mi.description);
    CHECK(strlen(mi.description) > 0 && !strchr(mi.description, '\n'), "%s: description", label);
    weights_close(ws);
}

static void test_dits(void)
{
    const dit_dims small = {32, 48, 3, 4, 4, 24, 16};
    keyset *k = calloc(1, sizeof *k);

    /* the key generator against the spec's counts for T2V-1.3B and 14B (wan_dit_detail.md §2.2) */
    const dit_dims real[2] = {{1536, 8960, 30, 16, 16, 4096, 256}, {5120, 13824, 40, 16, 16, 4096, 256}};
    const int64_t want_params[2] = {1418996800ll, 14288491584ll};
    const int want_count[2] = {825, 1095};
    for (int r = 0; r < 2; r++) {
        k->n = 0;
        dit_keys(k, r, "", real[r], DT_BF16); /* both layouts hold the same shapes */
        int64_t params = 0;
        for (int i = 0; i < k->n; i++) {
            int64_t n = 1;
            for (int d = 0; d < k->t[i].ndim; d++)
                n *= k->t[i].shape[d];
            params += n;
        }
        CHECK(k->n == want_count[r] && params == want_params[r], "spec model %d: %d tensors, %lld params",
              r, k->n, (long long)params);
    }
    k->n = 0;

    const char *dir = case_dir("original");
    dit_keys(k, 0, "", small, DT_F32);
    CHECK_OK(tw_write_safetensors(in_dir(dir, "diffusion_pytorch_model.safetensors"), k->t, k->n, NULL));
    write_text(in_dir(dir, "config.json"),
               "{\"_class_name\":\"WanModel\",\"model_type\":\"t2v\",\"dim\":32,\"ffn_dim\":48,"
               "\"freq_dim\":16,\"in_dim\":4,\"num_heads\":2,\"num_layers\":3,\"out_dim\":4,\"text_len\":512}");
    CHECK(k->n == 15 + 27 * 3, "original layout has %d tensors", k->n);
    expect("original+config", dir, MODEL_WAN_DIT, LAYOUT_WAN_ORIGINAL, "", &small, 2, "dim 32, 3 layers, 2 heads");

    /* the same weights, config.json claiming other widths: shapes win and it is said */
    dir = case_dir("disagree");
    CHECK_OK(tw_write_safetensors(in_dir(dir, "model.safetensors"), k->t, k->n, NULL));
    write_text(in_dir(dir, "config.json"), "{\"dim\":64,\"num_heads\":4,\"num_layers\":3}");
    expect("config disagrees", dir, MODEL_WAN_DIT, LAYOUT_WAN_ORIGINAL, "", &small, 4, "config.json says dim 64");
    write_text(in_dir(dir, "config.json"), "{\"dim\":64,");
    weights *ws = NULL;
    CHECK_OK(weights_open(dir, &ws));
    model_info mi;
    int st = ws ? model_detect(ws, &mi) : REEL_E_INVALID;
    CHECK(st == REEL_E_FORMAT && strstr(err_msg(), "config.json"), "malformed config.json: %d %s", st,
          err_msg());
    weights_close(ws);

    /* diffusers, sharded, with diffusers config field names */
    k->n = 0;
    dit_keys(k, 1, "", small, DT_F32);
    dir = case_dir("diffusers");
    CHECK_OK(tw_write_sharded(dir, "diffusion_pytorch_model", k->t, k->n, 2));
    write_text(in_dir(dir, "config.json"),
               "{\"_class_name\":\"WanTransformer3DModel\",\"attention_head_dim\":16,\"num_attention_heads\":2,"
               "\"ffn_dim\":48,\"freq_dim\":16,\"in_channels\":4,\"out_channels\":4,\"num_layers\":3,\"text_dim\":24}");
    expect("diffusers sharded", dir, MODEL_WAN_DIT, LAYOUT_DIFFUSERS, "", &small, 2, "diffusers layout");

    /* ComfyUI single file, bf16, no config: heads from Wan's head dim 128 */
    const dit_dims wide = {256, 64, 2, 16, 16, 32, 8};
    k->n = 0;
    dit_keys(k, 0, "model.diffusion_model.", wide, DT_BF16);
    dir = case_dir("comfy");
    CHECK_OK(tw_write_safetensors(in_dir(dir, "wan2.1_t2v_bf16.safetensors"), k->t, k->n, "{\"format\":\"pt\"}"));
    expect("comfyui prefixed", in_dir(dir, "wan2.1_t2v_bf16.safetensors"), MODEL_WAN_DIT, LAYOUT_COMFYUI,
           "model.diffusion_model.", &wide, 2, "head dim 128 assumed");

    /* Self-Forcing .pt: {'generator_ema': {'model.<original names>': ...}} */
    k->n = 0;
    dit_keys(k, 0, "model.", small, DT_F32);
    dir = case_dir("selfforcing");
    CHECK_OK(tw_write_pth(in_dir(dir, "self_forcing_dmd.pt"), k->t, k->n, "generator_ema"));
    expect("self-forcing ema", in_dir(dir, "self_forcing_dmd.pt"), MODEL_WAN_DIT, LAYOUT_SELF_FORCING,
           "generator_ema.model.", &small, 0, "EMA weights");
    /* both generator and generator_ema: the EMA copy is the one sampled with */
    keyset *k2 = calloc(1, sizeof *k2);
    dit_keys(k2, 0, "generator.model.", small, DT_F32);
    dit_keys(k2, 0, "generator_ema.model.", small, DT_F32);
    CHECK_OK(tw_write_safetensors(in_dir(dir, "both.safetensors"), k2->t, k2->n, NULL));
    expect("self-forcing both", in_dir(dir, "both.safetensors"), MODEL_WAN_DIT, LAYOUT_SELF_FORCING,
           "generator_ema.model.", &small, 0, NULL);
    free(k2);
    free(k);
}

static void test_vae_t5(void)
{
    keyset *k = calloc(1, sizeof *k);
    const char *dir = case_dir("vae");
    add(k, "", "encoder.conv1.weight", DT_F32, 5, 8, 3, 3, 3, 3);
    add(k, "", "encoder.head.2.weight", DT_F32, 5, 32, 8, 3, 3, 3);
    add(k, "", "conv1.weight", DT_F32, 5, 32, 32, 1, 1, 1);
    add(k, "", "conv2.weight", DT_F32, 5, 16, 16, 1, 1, 1);
    add(k, "", "decoder.conv1.weight", DT_F32, 5, 24, 16, 3, 3, 3);
    add(k, "", "decoder.head.2.weight", DT_F32, 5, 3, 8, 3, 3, 3);
    CHECK_OK(tw_write_pth(in_dir(dir, "Wan2.1_VAE.pth"), k->t, k->n, NULL));
    expect("vae original", in_dir(dir, "Wan2.1_VAE.pth"), MODEL_WAN_VAE, LAYOUT_WAN_ORIGINAL, "", NULL, 0,
           "z_dim 16, encoder and decoder");

    k->n = 0;
    add(k, "", "decoder.conv_in.weight", DT_BF16, 5, 24, 16, 3, 3, 3);
    add(k, "", "post_quant_conv.weight", DT_BF16, 5, 16, 16, 1, 1, 1);
    add(k, "", "decoder.conv_out.weight", DT_BF16, 5, 3, 8, 3, 3, 3);
    CHECK_OK(tw_write_safetensors(in_dir(dir, "vae.safetensors"), k->t, k->n, NULL));
    expect("vae diffusers", in_dir(dir, "vae.safetensors"), MODEL_WAN_VAE, LAYOUT_DIFFUSERS, "", NULL, 0,
           "decoder only");

    k->n = 0;
    add(k, "", "token_embedding.weight", DT_BF16, 2, 100, 8, 0, 0, 0);
    for (int b = 0; b < 2; b++) {
        char bp[32];
        snprintf(bp, sizeof bp, "blocks.%d.", b);
        add(k, bp, "norm1.weight", DT_BF16, 1, 8, 0, 0, 0, 0);
        add(k, bp, "attn.q.weight", DT_BF16, 2, 8, 8, 0, 0, 0);
        add(k, bp, "attn.o.weight", DT_BF16, 2, 8, 8, 0, 0, 0);
        add(k, bp, "ffn.gate.0.weight", DT_BF16, 2, 12, 8, 0, 0, 0);
        add(k, bp, "pos_embedding.embedding.weight", DT_BF16, 2, 32, 2, 0, 0, 0);
    }
    add(k, "", "norm.weight", DT_BF16, 1, 8, 0, 0, 0, 0);
    CHECK_OK(tw_write_pth(in_dir(dir, "models_t5_umt5-xxl-enc-bf16.pth"), k->t, k->n, NULL));
    expect("umt5 wan", in_dir(dir, "models_t5_umt5-xxl-enc-bf16.pth"), MODEL_UMT5_ENCODER,
           LAYOUT_WAN_ORIGINAL, "", NULL, 0, "dim 8, 2 layers, 2 heads, vocab 100");

    k->n = 0;
    add(k, "", "shared.weight", DT_F32, 2, 100, 8, 0, 0, 0);
    for (int b = 0; b < 3; b++) {
        char bp[48];
        snprintf(bp, sizeof bp, "encoder.block.%d.layer.0.", b);
        add(k, bp, "SelfAttention.q.weight", DT_F32, 2, 8, 8, 0, 0, 0);
        add(k, bp, "SelfAttention.relative_attention_bias.weight", DT_F32, 2, 32, 4, 0, 0, 0);
    }
    add(k, "", "encoder.final_layer_norm.weight", DT_F32, 1, 8, 0, 0, 0, 0);
    CHECK_OK(tw_write_safetensors(in_dir(dir, "umt5.safetensors"), k->t, k->n, NULL));
    expect("umt5 hf", in_dir(dir, "umt5.safetensors"), MODEL_UMT5_ENCODER, LAYOUT_DIFFUSERS, "", NULL, 0,
           "dim 8, 3 layers, 4 heads, vocab 100");

    k->n = 0;
    add(k, "", "fc.weight", DT_F32, 2, 4, 4, 0, 0, 0);
    add(k, "", "blocks.0.self_attn.q.weight", DT_F32, 2, 4, 4, 0, 0, 0); /* no head.modulation */
    CHECK_OK(tw_write_safetensors(in_dir(dir, "other.safetensors"), k->t, k->n, NULL));
    expect("unknown", in_dir(dir, "other.safetensors"), MODEL_UNKNOWN, LAYOUT_NONE, "", NULL, 0, "unknown");
    free(k);
}

static void test_info_json(void)
{
    const char *bin = getenv("REEL_BIN");
    if (!bin || !*bin) {
        printf("REEL_BIN not set: reel info not run\n");
        return;
    }
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "'%s' info --json '%s'", bin, in_dir(check_path("original"), ""));
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL, "popen");
    if (!p)
        return;
    size_t cap = 1 << 20, n = 0;
    char *out = malloc(cap);
    while (n + 1 < cap) {
        size_t got = fread(out + n, 1, cap - 1 - n, p);
        if (!got)
            break;
        n += got;
    }
    out[n] = 0;
    CHECK(pclose(p) == 0, "reel info --json failed");
    cJSON *j = cJSON_Parse(out);
    CHECK(j != NULL, "reel info --json printed invalid JSON");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model"),
                *totals = cJSON_GetObjectItemCaseSensitive(j, "totals"),
                *tensors = cJSON_GetObjectItemCaseSensitive(j, "tensors");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(model, "kind"),
                *dim = cJSON_GetObjectItemCaseSensitive(model, "dim"),
                *count = cJSON_GetObjectItemCaseSensitive(totals, "tensors");
    CHECK(cJSON_IsString(kind) && !strcmp(kind->valuestring, "wan-dit"), "json kind");
    CHECK(cJSON_IsNumber(dim) && dim->valuedouble == 32, "json dim");
    CHECK(cJSON_IsNumber(count) && count->valuedouble == 15 + 27 * 3 &&
              cJSON_GetArraySize(tensors) == 15 + 27 * 3,
          "json tensor count");
    cJSON_Delete(j);
    free(out);
}

int main(void)
{
    check_seed("test_loader_detect");
    zeros = calloc((size_t)1 << 20, sizeof(float));
    test_dits();
    test_vae_t5();
    test_info_json();
    free(zeros);
    return check_done();
}
