/* reel bench t5: the umT5-XXL encoder on one prompt of 512 tokens, with synthetic weights.
 * No checkpoint is needed: the bench writes one (bf16 safetensors, Hugging Face names, XXL
 * shapes, random values) to --dir, times t5_load on it (the file was just written, so this is
 * the load from the page cache: conversion and upload, not the disk), times t5_encode, and
 * removes the file. Distinct layers share their random values (each still has its own copy on
 * the device, so every layer reads its own weights from HBM). */
#include "cli.h"

#include "dit/error.h"
#include "dit/numeric.h"
#include "dit/st_write.h"
#include "dit/t5_encoder.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct bench_t5_job {
    const char *backend_name, *dir;
    int tokens, layers, iters, vocab, keep, json;
} bench_t5_job;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* XXL shapes (Wan's umt5_xxl config) */
enum { B_DIM = 4096, B_FFN = 10240, B_HEADS = 64, B_BUCKETS = 32 };

/* The checkpoint: every matrix views one random bf16 buffer (at a different offset, so q, k
 * and v differ), the norm gains are ones. */
static int write_checkpoint(const bench_t5_job *j, const char *path)
{
    size_t big = (size_t)B_FFN * B_DIM + (size_t)10 * B_DIM; /* matrix p starts at row p */
    size_t emb = (size_t)j->vocab * B_DIM;
    size_t nr = big > emb ? big : emb;
    uint16_t *r = malloc(nr * sizeof *r), *ones = malloc(B_DIM * sizeof *ones);
    int nt = 10 * j->layers + 2;
    st_named *named = calloc((size_t)nt, sizeof *named);
    tensor *ts = calloc((size_t)nt, sizeof *ts);
    char(*names)[96] = calloc((size_t)nt, sizeof *names);
    int st = r && ones && named && ts && names
                 ? REEL_OK
                 : err_set(REEL_E_NOMEM, "bench t5: synthetic weights");
    uint64_t s = 0x9e3779b97f4a7c15ull;
    const float amp = 1.7320508f / 64.0f; /* uniform with std 1/sqrt(dim) */
    for (size_t i = 0; st == REEL_OK && i < nr; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        r[i] = f32_to_bf16(amp * ((float)(s >> 40) / 8388608.0f - 1.0f));
    }
    for (int i = 0; st == REEL_OK && i < B_DIM; i++)
        ones[i] = f32_to_bf16(1.0f);
    static const char *const fmt[10] = {
        "encoder.block.%d.layer.0.layer_norm.weight",
        "encoder.block.%d.layer.0.SelfAttention.q.weight",
        "encoder.block.%d.layer.0.SelfAttention.k.weight",
        "encoder.block.%d.layer.0.SelfAttention.v.weight",
        "encoder.block.%d.layer.0.SelfAttention.o.weight",
        "encoder.block.%d.layer.0.SelfAttention.relative_attention_bias.weight",
        "encoder.block.%d.layer.1.layer_norm.weight",
        "encoder.block.%d.layer.1.DenseReluDense.wi_0.weight",
        "encoder.block.%d.layer.1.DenseReluDense.wi_1.weight",
        "encoder.block.%d.layer.1.DenseReluDense.wo.weight"};
    const int64_t shape[10][2] = {
        {B_DIM, 0},           {B_DIM, B_DIM}, {B_DIM, B_DIM}, {B_DIM, B_DIM}, {B_DIM, B_DIM},
        {B_BUCKETS, B_HEADS}, {B_DIM, 0},     {B_FFN, B_DIM}, {B_FFN, B_DIM}, {B_DIM, B_FFN}};
    int k = 0;
    for (int l = 0; st == REEL_OK && l < j->layers; l++)
        for (int p = 0; p < 10; p++, k++) {
            snprintf(names[k], sizeof names[k], fmt[p], l);
            uint16_t *data = shape[p][1] ? r + (size_t)p * B_DIM : ones;
            ts[k] = tensor_make(data, DT_BF16, DEV_CPU, shape[p][1] ? 2 : 1, shape[p]);
            named[k].name = names[k];
            named[k].t = &ts[k];
        }
    if (st == REEL_OK) {
        int64_t es[2] = {j->vocab, B_DIM}, ns = B_DIM;
        ts[k] = tensor_make(r, DT_BF16, DEV_CPU, 2, es);
        named[k] = (st_named){"shared.weight", &ts[k]};
        k++;
        ts[k] = tensor_make(ones, DT_BF16, DEV_CPU, 1, &ns);
        named[k] = (st_named){"encoder.final_layer_norm.weight", &ts[k]};
        st = st_write_file(path, named, nt, NULL, 1);
    }
    free(r), free(ones), free(named), free(ts), free(names);
    return st;
}

static int run(const bench_t5_job *j)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/reel-bench-t5.safetensors", j->dir);
    double t0 = now_ms();
    TRY(write_checkpoint(j, path));
    double write_ms = now_ms() - t0;
    backend *be;
    int st = backend_create_by_name(j->backend_name, &be);
    if (st < 0) {
        remove(path);
        return st;
    }
    t5_encoder *t = NULL;
    t0 = now_ms();
    st = t5_load(path, be, &t);
    double load_ms = now_ms() - t0;
    if (!j->keep)
        remove(path);
    int32_t *ids = malloc(sizeof *ids * (size_t)j->tokens);
    float *out = t ? malloc(sizeof *out * (size_t)j->tokens * t5_dim(t)) : NULL;
    double *ms = calloc((size_t)j->iters, sizeof *ms);
    if (st == REEL_OK && (!ids || !out || !ms))
        st = err_set(REEL_E_NOMEM, "bench t5: buffers");
    uint64_t s = 88172645463325252ull;
    for (int i = 0; st == REEL_OK && i < j->tokens; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        ids[i] = i == j->tokens - 1 ? 1 : (int32_t)(s % (uint64_t)j->vocab);
    }
    for (int i = -2; st == REEL_OK && i < j->iters; i++) { /* two warm-up runs */
        t0 = now_ms();
        st = t5_encode(t, ids, j->tokens, out);
        if (i >= 0)
            ms[i] = now_ms() - t0;
    }
    if (st == REEL_OK) {
        qsort(ms, (size_t)j->iters, sizeof *ms, cmp_double);
        double med = ms[j->iters / 2], n = j->tokens, d = B_DIM;
        double flop = j->layers * (2 * n * (4 * d * d + 3 * d * B_FFN) + 4 * n * n * d);
        if (j->json)
            printf("{\"bench\":\"t5\",\"backend\":\"%s\",\"tokens\":%d,\"layers\":%d,"
                   "\"encode_ms\":%.3f,"
                   "\"min_ms\":%.3f,\"tflops\":%.1f,\"load_ms\":%.0f,\"write_ms\":%.0f}\n",
                   be->ops->name, j->tokens, j->layers, med, ms[0], flop / med / 1e9, load_ms,
                   write_ms);
        else
            printf(
                "%s\nbackend %s, %d tokens: encode %.2f ms (median of %d, min %.2f), %.3g TFLOP/s\n"
                "load %.0f ms from the page cache (%.1f GB of bf16 weights); checkpoint written in "
                "%.0f ms\n",
                t5_description(t), be->ops->name, j->tokens, med, j->iters, ms[0], flop / med / 1e9,
                load_ms, j->layers * 2.0 * (4 * d * d + 3 * d * B_FFN) / 1e9, write_ms);
    }
    free(ids), free(out), free(ms);
    t5_free(t);
    backend_free(be);
    return st;
}

int bench_t5(int argc, char **argv)
{
    static const struct option opts[] = {
        {"backend", required_argument, 0, 'b'}, {"tokens", required_argument, 0, 't'},
        {"layers", required_argument, 0, 'l'},  {"iters", required_argument, 0, 'n'},
        {"vocab", required_argument, 0, 'v'},   {"dir", required_argument, 0, 'd'},
        {"keep", no_argument, 0, 'k'},          {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    const char *tmp = getenv("TMPDIR");
    bench_t5_job j = {"cuda", tmp && *tmp ? tmp : "/tmp", T5_MAX_TOKENS, 24, 20, 4096, 0, 0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': j.backend_name = optarg; break;
        case 't': j.tokens = atoi(optarg); break;
        case 'l': j.layers = atoi(optarg); break;
        case 'n': j.iters = atoi(optarg); break;
        case 'v': j.vocab = atoi(optarg); break;
        case 'd': j.dir = optarg; break;
        case 'k': j.keep = 1; break;
        case 'j': j.json = 1; break;
        case 'h':
            printf(
                "usage: reel bench t5 [--tokens 512] [--layers 24] [--iters 20] [--backend cuda]\n"
                "                     [--vocab 4096] [--dir DIR] [--keep] [--json]\n"
                "Writes a synthetic umT5-XXL checkpoint (bf16, %d layers = 9.3 GB at the default)\n"
                "to DIR (default $TMPDIR or /tmp), times loading it (from the page cache) and\n"
                "encoding one prompt of --tokens ids (median of --iters after two warm-ups),\n"
                "then removes it unless --keep. The vocabulary only sizes the embedding, which\n"
                "stays in the file mapping: it does not change the timings.\n",
                j.layers);
            return 0;
        default: return cli_usage_error("bench t5", "unknown option");
        }
    }
    if (j.tokens < 1 || j.tokens > T5_MAX_TOKENS || j.layers < 1 || j.iters < 1 || j.vocab < 2)
        return cli_usage_error("bench t5",
                               "need 1 <= --tokens <= %d, --layers and --iters >= 1, --vocab >= 2",
                               T5_MAX_TOKENS);
    int st = run(&j);
    return st < 0 ? cli_fail("bench t5", st) : 0;
}
