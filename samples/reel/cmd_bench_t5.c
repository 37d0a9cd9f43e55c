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
#include "dit/t5_synth.h"
#include "dit/clock.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_t5_job {
    const char *backend_name, *dir;
    int tokens, layers, iters, vocab, keep, json;
} bench_t5_job;

static int run(const bench_t5_job *j)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/reel-bench-t5.safetensors", j->dir);
    double t0 = clock_ms();
    TRY(t5_synth_write(path, j->layers, j->vocab));
    double write_ms = clock_ms() - t0;
    backend *be;
    int st = backend_create_by_name(j->backend_name, &be);
    if (st < 0) {
        remove(path);
        return st;
    }
    t5_encoder *t = NULL;
    t0 = clock_ms();
    st = t5_load(path, be, &t);
    double load_ms = clock_ms() - t0;
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
        t0 = clock_ms();
        st = t5_encode(t, ids, j->tokens, out);
        if (i >= 0)
            ms[i] = clock_ms() - t0;
    }
    if (st == REEL_OK) {
        qsort(ms, (size_t)j->iters, sizeof *ms, clock_cmp_double);
        double med = ms[j->iters / 2], n = j->tokens, d = T5_SYNTH_DIM;
        double flop = j->layers * (2 * n * (4 * d * d + 3 * d * T5_SYNTH_FFN) + 4 * n * n * d);
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
                load_ms, j->layers * 2.0 * (4 * d * d + 3 * d * T5_SYNTH_FFN) / 1e9, write_ms);
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
