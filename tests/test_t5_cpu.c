/* The umT5 encoder on the CPU backend: relative position buckets against the published table,
 * one random tiny model (d_model 64, 4 heads of 16, d_ff 96, 2 layers, vocab 300, 32 buckets)
 * written in Wan's .pth layout (bf16), the Hugging Face sharded layout (f32, with config.json)
 * and ComfyUI's single file (f16) giving identical outputs, those outputs against a plain
 * double-precision forward (relative L2 <= 1e-5), padding invariance, and the refusals. */
#include "check.h"
#include "support/model_writer.h"
#include "support/t5_tiny.h"

#include "dit/error.h"
#include "dit/t5_encoder.h"
#include "dit/t5_internal.h"
#include "dit/weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define TOL 1e-5
#define N 40 /* tokens: distances up to 39 reach the log-spaced buckets */

static backend *be;

/* A 10-piece unigram tokenizer (Hugging Face tokenizer.json) with umT5's special ids. */
static const char tiny_tokenizer_json[] =
    "{\"added_tokens\": [{\"id\": 0, \"content\": \"<pad>\", \"special\": true},"
    " {\"id\": 1, \"content\": \"</s>\", \"special\": true},"
    " {\"id\": 2, \"content\": \"<unk>\", \"special\": true}],"
    " \"normalizer\": null,"
    " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": "
    "\"WhitespaceSplit\"},"
    " {\"type\": \"Metaspace\", \"replacement\": \"\xE2\x96\x81\", \"add_prefix_space\": true}]},"
    " \"model\": {\"type\": \"Unigram\", \"unk_id\": 2, \"vocab\": [[\"<pad>\", 0], [\"</s>\", 0],"
    " [\"<unk>\", 0], [\"\xE2\x96\x81\", -2], [\"\xE2\x96\x81"
    "a\", -1], [\"a\", -1.5], [\"b\", -1.5], [\"ab\", -2], [\"c\", -3], [\"d\", -3]]}}";

/* Bidirectional, 32 buckets, max distance 128, from T5's table: distances 0..7 exact, then
 * 8-11, 12-15, 16-22, 23-31, 32-45, 46-63, 64-90, 91+ share buckets 8..15; keys after the query
 * add 16. */
static void test_buckets(void)
{
    static const int edges[] = {8, 12, 16, 23, 32, 46, 64, 91};
    int bad = 0;
    for (int rel = -200; rel <= 200; rel++) {
        int d = abs(rel), want = d;
        if (d >= 8) {
            want = 7;
            for (int e = 0; e < 8; e++)
                want += d >= edges[e];
        }
        want += rel > 0 ? 16 : 0;
        int got = t5_rel_bucket(rel, 32, 128);
        if (got != want && bad++ < 5)
            CHECK(got == want, "bucket(%d) = %d, want %d", rel, got, want);
    }
    CHECK(bad == 0, "%d offsets in the wrong bucket", bad);
    CHECK(t5_rel_bucket(0, 32, 128) == 0 && t5_rel_bucket(1, 32, 128) == 17 &&
              t5_rel_bucket(-1, 32, 128) == 1 && t5_rel_bucket(511, 32, 128) == 31,
          "spot values");
    /* another geometry against the double-precision formula */
    for (int rel = -300; rel <= 300; rel++)
        if (t5_rel_bucket(rel, 64, 256) != t5t_ref_bucket(rel, 64, 256) && bad++ < 5)
            CHECK(0, "64 buckets / 256: bucket(%d) = %d, want %d", rel, t5_rel_bucket(rel, 64, 256),
                  t5t_ref_bucket(rel, 64, 256));
}

static float *encode(const char *path, const int32_t *ids, int n, int n_valid)
{
    t5_encoder *t = NULL;
    int st = t5_load(path, be, &t);
    CHECK(st == REEL_OK, "t5_load(%s): %s", path, err_msg());
    if (st < 0)
        return NULL;
    float *out = malloc(sizeof(float) * n * t5_dim(t));
    for (size_t i = 0; i < (size_t)n * t5_dim(t); i++)
        out[i] = NAN;
    CHECK(t5_dim(t) == 64 && t5_vocab(t) == 300, "%s: dim %d vocab %d", path, t5_dim(t),
          t5_vocab(t));
    CHECK_OK(t5_encode_masked(t, ids, n, n_valid, out));
    t5_free(t);
    return out;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, isnan(a[i]) || isnan(b[i]) ? INFINITY : fabs((double)a[i] - b[i]));
    return m;
}

static int expect_load_error(const char *path, int want, const char *needle)
{
    t5_encoder *t = NULL;
    int st = t5_load(path, be, &t);
    CHECK(st == want, "t5_load(%s) = %d, want %d (%s)", path, st, want, err_msg());
    CHECK(needle == NULL || strstr(err_msg(), needle), "message '%s' lacks '%s'", err_msg(),
          needle);
    CHECK(t == NULL, "no encoder on failure");
    t5_free(t);
    return st;
}

static void write_config(const char *dir, const char *body)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s", path);
    if (f) {
        fputs(body, f);
        fclose(f);
    }
}

int main(void)
{
    check_seed("test_t5_cpu");
    CHECK_OK(backend_cpu_create(2, &be));
    if (!be)
        return check_done();
    test_buckets();

    t5t_model m;
    CHECK_OK(t5t_make(&m, 64, 4, 96, 2, 300));
    char wan_dir[512], diff_dir[512], te_dir[600], comfy[512];
    snprintf(wan_dir, sizeof wan_dir, "%s", check_path("wan"));
    snprintf(diff_dir, sizeof diff_dir, "%s", check_path("diffusers"));
    snprintf(te_dir, sizeof te_dir, "%s/text_encoder", diff_dir);
    snprintf(comfy, sizeof comfy, "%s", check_path("umt5_xxl_fp16.safetensors"));
    mkdir(wan_dir, 0755);
    mkdir(diff_dir, 0755);
    mkdir(te_dir, 0755);
    char pth[600];
    snprintf(pth, sizeof pth, "%s/models_t5_umt5-xxl-enc-bf16.pth", wan_dir);
    CHECK_OK(t5t_write(&m, T5T_WAN_PTH, DT_BF16, pth, NULL));
    CHECK_OK(t5t_write(&m, T5T_HF_SHARDED, DT_F32, te_dir, NULL));
    CHECK_OK(t5t_write(&m, T5T_COMFY, DT_F16, comfy, NULL));

    int32_t ids[N];
    for (int i = 0; i < N - 1; i++)
        ids[i] = 2 + (int32_t)(check_rand_u64() % 298);
    ids[N - 1] = 1; /* EOS */
    size_t nd = (size_t)N * 64;

    /* the three layouts, model folders resolved to their T5 */
    float *a = encode(wan_dir, ids, N, N), *b = encode(diff_dir, ids, N, N),
          *c = encode(comfy, ids, N, N);
    double *ref = malloc(sizeof(double) * nd);
    t5t_reference(&m, ids, N, N, ref);
    if (a && b && c) {
        CHECK(max_abs_diff(a, b, nd) == 0, "Wan .pth vs HF sharded: max diff %g",
              max_abs_diff(a, b, nd));
        CHECK(max_abs_diff(a, c, nd) == 0, "Wan .pth vs ComfyUI: max diff %g",
              max_abs_diff(a, c, nd));
        double e = check_rel_l2_d(a, ref, nd);
        printf("cpu vs double reference, %d tokens: rel_l2 %.3g (tol %g)\n", N, e, TOL);
        CHECK(e <= TOL, "rel_l2 %g", e);
    }

    /* padding: 23 real ids then Wan's pad id 0, keys past 23 masked */
    int nv = 23;
    int32_t padded[N];
    memcpy(padded, ids, sizeof padded);
    padded[nv - 1] = 1;
    for (int i = nv; i < N; i++)
        padded[i] = 0;
    float *alone = encode(comfy, padded, nv, nv), *masked = encode(comfy, padded, N, nv);
    float *unmasked = encode(comfy, padded, N, N);
    t5t_reference(&m, padded, N, nv, ref);
    if (alone && masked && unmasked) {
        double e = check_rel_l2(masked, alone, (size_t)nv * 64);
        printf("padded (%d of %d) vs alone: rel_l2 %.3g\n", nv, N, e);
        CHECK(e <= 1e-6, "real rows change with padding: rel_l2 %g", e);
        e = check_rel_l2_d(masked, ref, nd);
        CHECK(e <= TOL, "masked forward (all rows) vs reference: rel_l2 %g", e);
        e = check_rel_l2(unmasked, alone, (size_t)nv * 64);
        CHECK(e > 1e-3, "attending to the padding should change the real rows (rel_l2 %g)", e);
    }

    /* one bias table shared by every layer (T5 v1.1), in both layouts */
    m.shared_bias = 1;
    char shared_pth[600], shared_st[600];
    snprintf(shared_pth, sizeof shared_pth, "%s", check_path("shared.pth"));
    snprintf(shared_st, sizeof shared_st, "%s", check_path("shared.safetensors"));
    CHECK_OK(t5t_write(&m, T5T_WAN_PTH, DT_F32, shared_pth, NULL));
    CHECK_OK(t5t_write(&m, T5T_COMFY, DT_F32, shared_st, NULL));
    float *sa = encode(shared_pth, ids, N, N), *sb = encode(shared_st, ids, N, N);
    t5t_reference(&m, ids, N, N, ref);
    if (sa && sb) {
        CHECK(check_rel_l2_d(sa, ref, nd) <= TOL, "shared bias (Wan): rel_l2 %g",
              check_rel_l2_d(sa, ref, nd));
        CHECK(check_rel_l2_d(sb, ref, nd) <= TOL, "shared bias (HF): rel_l2 %g",
              check_rel_l2_d(sb, ref, nd));
    }
    m.shared_bias = 0;

    /* refusals */
    t5_encoder *t = NULL;
    CHECK_OK(t5_load(comfy, be, &t));
    if (t) {
        float *out = malloc(sizeof(float) * (T5_MAX_TOKENS + 1) * 64);
        int32_t big[T5_MAX_TOKENS + 1] = {0};
        int32_t bad[3] = {5, 300, 1}, neg[2] = {-1, 1};
        CHECK(t5_encode(t, bad, 3, out) == REEL_E_INVALID && strstr(err_msg(), "300"), "%s",
              err_msg());
        CHECK(t5_encode(t, neg, 2, out) == REEL_E_INVALID, "negative id");
        CHECK(t5_encode(t, ids, 0, out) == REEL_E_INVALID, "no tokens");
        CHECK(t5_encode(t, big, T5_MAX_TOKENS + 1, out) == REEL_E_INVALID, "513 tokens");
        CHECK(t5_encode_masked(t, ids, 4, 5, out) == REEL_E_INVALID, "n_valid > n");
        CHECK(t5_encode_masked(t, ids, 4, 0, out) == REEL_E_INVALID, "n_valid 0");
        CHECK(strstr(t5_description(t), "Hugging Face") && strstr(t5_description(t), "2 layers"),
              "%s", t5_description(t));
        free(out);
        t5_free(t);
    }
    char missing[600];
    snprintf(missing, sizeof missing, "%s", check_path("missing.pth"));
    CHECK_OK(t5t_write(&m, T5T_WAN_PTH, DT_BF16, missing, "blocks.1.ffn.fc2.weight"));
    expect_load_error(missing, REEL_E_NOT_FOUND, "blocks.1.ffn.fc2.weight");
    char fp8[600];
    snprintf(fp8, sizeof fp8, "%s", check_path("umt5_xxl_fp8_e4m3fn_scaled.safetensors"));
    CHECK_OK(t5t_write(&m, T5T_COMFY, DT_F8_E4M3, fp8, NULL));
    expect_load_error(fp8, REEL_E_UNSUPPORTED, "scaled fp8");
    write_config(te_dir, "{\"d_model\": 65, \"num_heads\": 4}");
    expect_load_error(diff_dir, REEL_E_FORMAT, "d_model");
    write_config(te_dir, "{\"d_model\": 64, \"feed_forward_proj\": \"relu\"}");
    expect_load_error(diff_dir, REEL_E_UNSUPPORTED, "relu");
    write_config(te_dir, "[1, 2]");
    expect_load_error(diff_dir, REEL_E_FORMAT, "config.json");
    write_config(te_dir, "{\"d_model\": 64, \"relative_attention_max_distance\": 4}");
    expect_load_error(diff_dir, REEL_E_FORMAT, "max distance 4");
    /* a checkpoint that is something else, and none at all */
    float w[4] = {1, 2, 3, 4};
    tw_tensor other = {"foo.weight", DT_F32, 2, {2, 2}, w};
    CHECK_OK(tw_write_safetensors(check_path("other.safetensors"), &other, 1, NULL));
    expect_load_error(check_path("other.safetensors"), REEL_E_FORMAT, "not a umT5");
    expect_load_error(check_path("nothing-here"), REEL_E_NOT_FOUND, "nothing-here");

    /* reel encode-text: the same rows through the command-line tool and a file */
    const char *bin = getenv("REEL_BIN");
    CHECK(bin != NULL, "REEL_BIN not set (run through ctest)");
    if (bin && c) {
        char outp[600], cmd[4096], list[N * 8] = "";
        snprintf(outp, sizeof outp, "%s", check_path("ctx.safetensors"));
        for (int i = 0; i < N; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), i ? ",%d" : "%d",
                     (int)ids[i]);
        snprintf(cmd, sizeof cmd, "'%s' encode-text --backend cpu --model '%s' --ids '%s' -o '%s'",
                 bin, comfy, list, outp);
        int rc = system(cmd);
        CHECK(rc == 0, "reel encode-text exited with %d", rc);
        weights *ws = NULL;
        CHECK_OK(weights_open(outp, &ws));
        const weight_entry *ctx = ws ? weights_find(ws, "context") : NULL;
        const weight_entry *wid = ws ? weights_find(ws, "ids") : NULL;
        CHECK(ctx && ctx->t.ndim == 2 && ctx->t.shape[0] == N && ctx->t.shape[1] == 64 &&
                  ctx->t.dtype == DT_F32,
              "context [%d, 64] f32 expected", N);
        CHECK(wid && wid->t.dtype == DT_I32 && wid->t.shape[0] == N &&
                  !memcmp(wid->t.data, ids, sizeof ids),
              "ids [%d] i32 as given expected", N);
        if (ctx && ctx->t.shape[0] == N && ctx->t.shape[1] == 64)
            CHECK(!memcmp(ctx->t.data, c, nd * sizeof(float)),
                  "reel encode-text output differs from t5_encode");
        weights_close(ws);
        /* --prompt: Wan's cleaning, the tokenizer a Wan release keeps in google/umt5-xxl/ */
        char tdir[700], tjson[800];
        snprintf(tdir, sizeof tdir, "%s/google", wan_dir);
        mkdir(tdir, 0755);
        snprintf(tdir, sizeof tdir, "%s/google/umt5-xxl", wan_dir);
        mkdir(tdir, 0755);
        snprintf(tjson, sizeof tjson, "%s/tokenizer.json", tdir);
        FILE *f = fopen(tjson, "w");
        CHECK(f != NULL, "cannot write %s", tjson);
        if (f) {
            fputs(tiny_tokenizer_json, f);
            fclose(f);
        }
        char outp2[600], cmd2[4096];
        snprintf(outp2, sizeof outp2, "%s", check_path("ctx_prompt.safetensors"));
        snprintf(cmd2, sizeof cmd2,
                 "'%s' encode-text --backend cpu --model '%s' --prompt '  ab \t  ab ' -o '%s'", bin,
                 wan_dir, outp2);
        rc = system(cmd2);
        CHECK(rc == 0, "reel encode-text --prompt exited with %d", rc);
        int32_t want[5] = {4, 6, 4, 6, 1}; /* '▁a' 'b' '▁a' 'b' '</s>' */
        float direct[5 * 64];
        t5_encoder *tw = NULL;
        CHECK_OK(t5_load(wan_dir, be, &tw));
        if (tw)
            CHECK_OK(t5_encode(tw, want, 5, direct));
        t5_free(tw);
        CHECK_OK(weights_open(outp2, &ws));
        ctx = ws ? weights_find(ws, "context") : NULL;
        wid = ws ? weights_find(ws, "ids") : NULL;
        CHECK(wid && wid->t.shape[0] == 5 && !memcmp(wid->t.data, want, sizeof want),
              "prompt ids differ from 4 6 4 6 1");
        CHECK(ctx && ctx->t.shape[0] == 5 && !memcmp(ctx->t.data, direct, sizeof direct),
              "prompt context differs from t5_encode of its ids");
        weights_close(ws);

        rc = system(cmd); /* the output exists and --overwrite was not given */
        CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "second run without --overwrite: %d", rc);
        snprintf(cmd, sizeof cmd,
                 "'%s' encode-text --backend cpu --model '%s' --ids '5 x' -o '%s' 2>/dev/null", bin,
                 comfy, check_path("bad.safetensors"));
        rc = system(cmd);
        CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "--ids '5 x': %d", rc);
    }

    free(a), free(b), free(c), free(ref), free(alone), free(masked), free(unmasked), free(sa),
        free(sb);
    t5t_free(&m);
    backend_free(be);
    return check_done();
}
