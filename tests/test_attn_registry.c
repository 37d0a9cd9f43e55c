/* The attention registry and instances (plugin/attn_registry.c, attention/attn_instance.c):
 * built-ins by name, spec and option errors with useful messages, argument checks, tables
 * registered at run time (and refused for a wrong ABI), and the dense plugin on the CPU,
 * including cross-attention (kv_tokens != q_tokens) with strided q/k/v. */
#include "check.h"
#include "test_attn_naive.h"

#include "attention/attn.h"
#include "dit/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static reel_attn_config small_config(void)
{
    reel_attn_config c = attn_config_default();
    c.heads = 3;
    c.head_dim = 32;
    c.model_dim = 96;
    c.grid_f = 2, c.grid_h = 3, c.grid_w = 5;
    c.num_steps = 4;
    c.num_layers = 2;
    return c;
}

static void check_lookup_and_spec_errors(void)
{
    attn_register_builtins();
    attn_register_builtins(); /* idempotent */
    CHECK(reel_attn_find("dense") != NULL, "dense is built in");
    CHECK(reel_attn_find("radial") != NULL, "radial is built in");
    CHECK(reel_attn_find("nope") == NULL, "unknown names are not found");
    int n = reel_attn_count();
    CHECK(n >= 2, "count %d", n);
    CHECK(reel_attn_at(n) == NULL && reel_attn_at(-1) == NULL, "out-of-range index gives NULL");

    reel_attn_config cfg = small_config();
    attn_instance *a = NULL;
    CHECK(attn_instance_create("nope", &cfg, &a) == REEL_E_NOT_FOUND && !a, "unknown plugin");
    CHECK(strstr(err_msg(), "'nope'") && strstr(err_msg(), "dense") && strstr(err_msg(), "radial"),
          "message names the plugin and lists the available ones: %s", err_msg());
    CHECK(attn_instance_create("dense:bogus=1", &cfg, &a) == REEL_E_INVALID, "unknown option");
    CHECK(strstr(err_msg(), "bogus") && strstr(err_msg(), "threads") && strstr(err_msg(), "kernel"),
          "message names the option and lists the known ones: %s", err_msg());
    CHECK(attn_instance_create("dense:threads", &cfg, &a) == REEL_E_INVALID, "option without =");
    CHECK(attn_instance_create("dense:threads=two", &cfg, &a) == REEL_E_INVALID, "bad integer");
    CHECK(strstr(err_msg(), "threads=two") != NULL, "message names key and value: %s", err_msg());
    CHECK(attn_instance_create("dense:threads=1,threads=2", &cfg, &a) == REEL_E_INVALID,
          "option given twice");
    CHECK(attn_instance_create("dense:kernel=fast", &cfg, &a) == REEL_E_INVALID, "bad kernel");
    CHECK(attn_instance_create("radial:decay_factor=-1", &cfg, &a) == REEL_E_INVALID,
          "negative decay");
    CHECK(attn_instance_create("", &cfg, &a) == REEL_E_INVALID, "empty spec");
    CHECK(attn_instance_create(":threads=1", &cfg, &a) == REEL_E_INVALID, "empty name");

    reel_attn_config bad = cfg;
    bad.struct_size = 8;
    CHECK(attn_instance_create("dense", &bad, &a) == REEL_E_INVALID, "wrong config size");
    bad = cfg;
    bad.heads = 0;
    CHECK(attn_instance_create("dense", &bad, &a) == REEL_E_INVALID, "0 heads");
    bad = cfg;
    bad.dtype = REEL_ATTN_BF16; /* bf16 on the CPU */
    CHECK(attn_instance_create("dense", &bad, &a) == REEL_E_UNSUPPORTED, "bf16 on the CPU");
    bad = cfg;
    bad.grid_f = 0;
    CHECK(attn_instance_create("radial", &bad, &a) == REEL_E_INVALID, "radial needs a grid");
    bad = cfg;
    bad.chunk_frames = 1;
    CHECK(attn_instance_create("radial", &bad, &a) == REEL_E_UNSUPPORTED, "radial is bidirectional");

    CHECK_OK(attn_instance_create("dense:threads=2,", &cfg, &a)); /* trailing comma tolerated */
    CHECK(a && !strcmp(attn_instance_plugin(a)->name, "dense"), "instance of dense");
    attn_instance_free(a);
}

/* dense on the CPU, q [Lq] and k/v [Lk] slices of wider rows (a fused QKV buffer) */
static void check_dense_cpu_cross(void)
{
    reel_attn_config cfg = small_config();
    const int H = cfg.heads, D = cfg.head_dim;
    const int64_t Lq = 41, Lk = 17, qs = 3 * H * D, ks = 2 * H * D + 8;
    float *qbuf = malloc(sizeof(float) * Lq * qs), *kv = malloc(sizeof(float) * Lk * ks);
    float *out = malloc(sizeof(float) * Lq * H * D), *lse = malloc(sizeof(float) * H * Lq);
    double *ref = malloc(sizeof(double) * Lq * H * D), *rlse = malloc(sizeof(double) * H * Lq);
    check_fill_normal(qbuf, Lq * qs, 1.0f);
    check_fill_normal(kv, Lk * ks, 1.0f);
    const float *q = qbuf + H * D, *k = kv, *v = kv + H * D; /* q is the middle third */
    naive_attention(q, k, v, Lq, Lk, H, D, qs, ks, 0.3, NULL, NULL, ref, rlse);

    attn_instance *a;
    CHECK_OK(attn_instance_create("dense", &cfg, &a));
    reel_attn_args args = attn_args_default();
    args.q = q, args.k = k, args.v = v, args.out = out, args.lse = lse;
    args.q_tokens = Lq, args.kv_tokens = Lk, args.q_row_stride = qs, args.kv_row_stride = ks;
    args.scale = 0.3f;
    for (int64_t i = 0; i < Lq * H * D; i++)
        out[i] = NAN;
    CHECK_OK(attn_instance_forward(a, &args));
    double e = check_rel_l2_d(out, ref, Lq * H * D);
    double le = 0;
    for (int64_t i = 0; i < H * Lq; i++)
        le = fmax(le, fabs(lse[i] - rlse[i]));
    printf("  dense cpu cross-attention %lldx%lld: rel_l2 %.2e, lse err %.2e\n", (long long)Lq,
           (long long)Lk, e, le);
    CHECK(e < 1e-6, "dense plugin vs naive: %g", e);
    CHECK(le < 1e-4, "dense plugin lse: %g", le);
    CHECK_OK(attn_instance_end_step(a, 0)); /* dense has no end_step: a no-op */

    reel_attn_args bad = args;
    bad.scale = 0;
    CHECK(attn_instance_forward(a, &bad) == REEL_E_INVALID, "scale 0");
    bad = args;
    bad.kv_row_stride = H * D - 1;
    CHECK(attn_instance_forward(a, &bad) == REEL_E_INVALID, "stride below a row");
    CHECK(strstr(err_msg(), "stride") != NULL, "message names the stride: %s", err_msg());
    bad = args;
    bad.out = NULL;
    CHECK(attn_instance_forward(a, &bad) == REEL_E_INVALID, "NULL out");
    bad = args;
    bad.struct_size = 4;
    CHECK(attn_instance_forward(a, &bad) == REEL_E_INVALID, "wrong args size");
    bad = args;
    bad.last_key_copies = -2;
    CHECK(attn_instance_forward(a, &bad) == REEL_E_INVALID, "negative last_key_copies");
    attn_instance_free(a);

    /* a repeated last key is weighted by the dense plugin only; another plugin refuses it */
    attn_instance *r;
    CHECK_OK(attn_instance_create("radial", &cfg, &r));
    bad = args;
    bad.last_key_copies = 5;
    CHECK(attn_instance_forward(r, &bad) == REEL_E_UNSUPPORTED, "radial with last_key_copies");
    CHECK(strstr(err_msg(), "dense") != NULL, "message names the dense plugin: %s", err_msg());
    attn_instance_free(r);
    free(qbuf), free(kv), free(out), free(lse), free(ref), free(rlse);
}

/* A plugin registered at run time: it fills out with its option value, and counts steps. */
typedef struct fill_state {
    float value;
    int steps_ended;
} fill_state;

static const reel_attn_option fill_options[] = {{"value", "1.5", "what to write"}, {NULL, NULL, NULL}};

static int fill_create(const reel_attn_config *cfg, const char *options, void **state, char *err,
                       size_t n)
{
    fill_state *s = calloc(1, sizeof *s);
    s->value = strncmp(options, "value=", 6) == 0 ? strtof(options + 6, NULL) : 1.5f;
    *state = s;
    return 0;
}

static int fill_forward(void *state, const reel_attn_args *a, char *err, size_t n)
{
    fill_state *s = state;
    if (a->layer == 7) {
        snprintf(err, n, "layer 7 is cursed");
        return REEL_E_UNSUPPORTED;
    }
    float *o = a->out;
    for (int64_t i = 0; i < a->q_tokens * 3 * 32; i++)
        o[i] = s->value + (float)s->steps_ended;
    return 0;
}

static int fill_end_step(void *state, int step)
{
    ((fill_state *)state)->steps_ended++;
    return 0;
}

static void fill_destroy(void *state) { free(state); }

static void check_runtime_registration(void)
{
    static reel_attn_plugin fill = {REEL_ATTN_ABI_VERSION, sizeof(reel_attn_plugin), "fill",
                                    "test", fill_options, fill_create, fill_forward,
                                    fill_end_step, fill_destroy};
    int before = reel_attn_count();
    CHECK_OK(reel_attn_register(&fill));
    CHECK_OK(reel_attn_register(&fill)); /* same name again replaces, does not add */
    CHECK(reel_attn_count() == before + 1, "count %d after registering one", reel_attn_count());

    reel_attn_config cfg = small_config();
    attn_instance *a;
    CHECK_OK(attn_instance_create("fill:value=4", &cfg, &a));
    float x[4 * 3 * 32], out[4 * 3 * 32];
    check_fill_normal(x, 4 * 3 * 32, 1.0f);
    reel_attn_args args = attn_args_default();
    args.q = args.k = args.v = x, args.out = out;
    args.q_tokens = args.kv_tokens = 4, args.q_row_stride = args.kv_row_stride = 96;
    args.scale = 1;
    CHECK_OK(attn_instance_forward(a, &args));
    CHECK(out[0] == 4.0f && out[4 * 96 - 1] == 4.0f, "plugin wrote %g", out[0]);
    CHECK_OK(attn_instance_end_step(a, 0));
    CHECK_OK(attn_instance_forward(a, &args));
    CHECK(out[5] == 5.0f, "end_step reached the plugin: %g", out[5]);
    args.layer = 7;
    CHECK(attn_instance_forward(a, &args) == REEL_E_UNSUPPORTED, "plugin failure propagates");
    CHECK(strstr(err_msg(), "cursed") && strstr(err_msg(), "fill") && strstr(err_msg(), "layer 7"),
          "message carries the plugin's reason and the call: %s", err_msg());
    attn_instance_free(a);
    CHECK(attn_instance_create("fill:colour=red", &cfg, &a) == REEL_E_INVALID && !a,
          "registered plugins get option checks too");

    static reel_attn_plugin old = {REEL_ATTN_ABI_VERSION + 1, sizeof(reel_attn_plugin), "old",
                                   "test", NULL, fill_create, fill_forward, NULL, fill_destroy};
    CHECK(reel_attn_register(&old) == REEL_E_ABI, "wrong ABI version refused");
    CHECK(strstr(err_msg(), "ABI version") != NULL, "message: %s", err_msg());
    static reel_attn_plugin noname = {REEL_ATTN_ABI_VERSION, sizeof(reel_attn_plugin), "a:b",
                                      "test", NULL, fill_create, fill_forward, NULL, fill_destroy};
    CHECK(reel_attn_register(&noname) == REEL_E_INVALID, "a name with ':' cannot be a spec");
    CHECK(reel_attn_register(NULL) == REEL_E_INVALID, "NULL table");
    CHECK(reel_attn_find("old") == NULL, "refused tables are not registered");
}

static void check_cuda_without_cuda(void)
{
#ifndef REEL_HAVE_CUDA
    reel_attn_config cfg = small_config();
    cfg.device = REEL_ATTN_CUDA;
    cfg.dtype = REEL_ATTN_BF16;
    attn_instance *a;
    CHECK(attn_instance_create("dense", &cfg, &a) == REEL_E_UNSUPPORTED, "CUDA in a CPU build");
    CHECK(strstr(err_msg(), "without CUDA") != NULL, "message: %s", err_msg());
#endif
}

int main(void)
{
    check_seed("test_attn_registry");
    check_lookup_and_spec_errors();
    check_dense_cpu_cross();
    check_runtime_registration();
    check_cuda_without_cuda();
    return check_done();
}
