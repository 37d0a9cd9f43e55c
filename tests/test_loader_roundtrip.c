/* Weight loading round trips: files written by tests/support/model_writer (safetensors with every
 * dtype, a 3-shard checkpoint with its index, PyTorch zip checkpoints in f32/bf16/f16, nested,
 * with over 1000 tensors, and hand-made strided views) read back through weights_open/find/
 * read_f32, every value compared exactly against values chosen to be exact in the stored dtype. */
#include "check.h"
#include "support/model_writer.h"

#include "dit/error.h"
#include "dit/numeric.h"
#include "dit/weights.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A test tensor: bytes in the stored dtype and, for float dtypes, the f32 values they hold. */
typedef struct tt {
    tw_tensor w;
    uint8_t *bytes;
    float *expect;
    int64_t numel;
} tt;

/* Decoders written independently of dit/numeric.h, from the format definitions. */
static float ref_minifloat(unsigned bits, int ebits, int mbits, int bias, int ieee_inf)
{
    unsigned sign = bits >> (ebits + mbits), e = (bits >> mbits) & ((1u << ebits) - 1),
             m = bits & ((1u << mbits) - 1);
    double v;
    if (e == 0)
        v = ldexp((double)m, 1 - bias - mbits);
    else if (ieee_inf && e == (1u << ebits) - 1)
        v = m ? NAN : INFINITY;
    else
        v = ldexp((double)((1u << mbits) | m), (int)e - bias - mbits);
    return (float)(sign ? -v : v);
}

static void tt_make(tt *t, const char *name, enum dtype dt, int ndim, const int64_t *shape)
{
    memset(t, 0, sizeof *t);
    t->w.name = name;
    t->w.dtype = dt;
    t->w.ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->w.shape[i] = shape[i];
        t->numel *= shape[i];
    }
    size_t es = dtype_size(dt);
    t->bytes = malloc((size_t)t->numel * es + 1);
    t->expect = malloc(((size_t)t->numel + 1) * sizeof(float));
    for (int64_t i = 0; i < t->numel; i++) {
        uint8_t *p = t->bytes + i * (int64_t)es;
        float x = (float)check_rand_normal();
        switch (dt) {
        case DT_F32:
            memcpy(p, &x, 4);
            t->expect[i] = x;
            break;
        case DT_F64: {
            double d = (double)x;
            memcpy(p, &d, 8);
            t->expect[i] = x;
            break;
        }
        case DT_BF16: { /* truncate to 8 significant bits: exact in bf16 */
            uint32_t u = f32_bits(x) & 0xffff0000u;
            uint16_t h = (uint16_t)(u >> 16);
            memcpy(p, &h, 2);
            t->expect[i] = f32_from_bits(u);
            break;
        }
        case DT_F16: { /* multiples of 1/256 below 8: exact in f16 */
            float v = (float)((int)check_rand_uniform(-2048, 2048)) / 256.0f;
            uint16_t h = f32_to_f16(v);
            memcpy(p, &h, 2);
            t->expect[i] = v;
            break;
        }
        case DT_F8_E4M3: {
            uint8_t b = (uint8_t)check_rand_u64();
            if ((b & 0x7f) == 0x7f) /* the NaN codes */
                b ^= 1;
            *p = b;
            t->expect[i] = ref_minifloat(b, 4, 3, 7, 0);
            break;
        }
        case DT_F8_E5M2: {
            uint8_t b = (uint8_t)check_rand_u64();
            if (((b >> 2) & 0x1f) == 0x1f) /* inf/NaN codes */
                b &= 0xfb;
            *p = b;
            t->expect[i] = ref_minifloat(b, 5, 2, 15, 1);
            break;
        }
        default: /* integers and bool: raw bytes, compared as bytes */
            for (size_t k = 0; k < es; k++)
                p[k] = (uint8_t)check_rand_u64();
            if (dt == DT_BOOL)
                *p &= 1;
            break;
        }
    }
    t->w.data = t->bytes;
}

static void tt_free(tt *t, int n)
{
    for (int i = 0; i < n; i++) {
        free(t[i].bytes);
        free(t[i].expect);
    }
}

/* The entry holds exactly t: dtype, shape, contiguous strides, and values. */
static void check_entry(const weights *ws, const tt *t)
{
    const weight_entry *e = weights_find(ws, t->w.name);
    CHECK(e != NULL, "tensor %s not found", t->w.name);
    if (!e)
        return;
    CHECK(!strcmp(e->name, t->w.name), "%s: name %s", t->w.name, e->name);
    CHECK(e->t.dtype == t->w.dtype, "%s: dtype %s, want %s", t->w.name, dtype_name(e->t.dtype),
          dtype_name(t->w.dtype));
    CHECK(e->t.dev == DEV_CPU && e->file != NULL, "%s: device or file", t->w.name);
    CHECK(e->t.ndim == t->w.ndim, "%s: ndim %d, want %d", t->w.name, e->t.ndim, t->w.ndim);
    int64_t s = 1;
    for (int d = t->w.ndim - 1; d >= 0 && d < e->t.ndim; d--) {
        CHECK(e->t.shape[d] == t->w.shape[d], "%s: shape[%d] %lld", t->w.name, d,
              (long long)e->t.shape[d]);
        CHECK(e->t.stride[d] == s, "%s: stride[%d] %lld, want %lld", t->w.name, d,
              (long long)e->t.stride[d], (long long)s);
        s *= t->w.shape[d];
    }
    size_t nbytes = (size_t)t->numel * dtype_size(t->w.dtype);
    CHECK(nbytes == 0 || !memcmp(e->t.data, t->bytes, nbytes), "%s: stored bytes differ", t->w.name);
    float *got = malloc(((size_t)t->numel + 1) * sizeof(float));
    int st = weights_read_f32(e, got);
    if (dtype_is_float(t->w.dtype)) {
        CHECK(st == REEL_OK, "%s: read_f32: %s", t->w.name, err_msg());
        int64_t bad = 0;
        for (int64_t i = 0; i < t->numel && st == REEL_OK; i++)
            bad += f32_bits(got[i]) != f32_bits(t->expect[i]);
        CHECK(bad == 0, "%s (%s): %lld of %lld values differ", t->w.name, dtype_name(t->w.dtype),
              (long long)bad, (long long)t->numel);
    } else {
        CHECK(st == REEL_E_UNSUPPORTED, "%s: read_f32 of %s gave %d", t->w.name,
              dtype_name(t->w.dtype), st);
        CHECK(strstr(err_msg(), t->w.name) != NULL, "message names the tensor: %s", err_msg());
    }
    free(got);
}

static void test_safetensors_all_dtypes(void)
{
    static const enum dtype dts[] = {DT_F32, DT_F16, DT_BF16, DT_F8_E4M3, DT_F8_E5M2, DT_F64,
                                     DT_I64, DT_I32, DT_I16,  DT_I8,      DT_U8,      DT_BOOL};
    enum { N = sizeof dts / sizeof dts[0] + 3 };
    static char names[N][48];
    tt t[N];
    for (int i = 0; i < (int)(sizeof dts / sizeof dts[0]); i++) {
        int ndim = 1 + (int)(check_rand_u64() % 5);
        int64_t shape[5];
        for (int d = 0; d < ndim; d++)
            shape[d] = 1 + (int64_t)(check_rand_u64() % 5);
        snprintf(names[i], sizeof names[i], "layer.%d.%s", i, dtype_name(dts[i]));
        tt_make(&t[i], names[i], dts[i], ndim, shape);
    }
    int k = (int)(sizeof dts / sizeof dts[0]);
    int64_t big[2] = {37, 129}, zero[3] = {4, 0, 3};
    tt_make(&t[k], "big", DT_F32, 2, big);
    tt_make(&t[k + 1], "scalar", DT_BF16, 0, NULL);
    tt_make(&t[k + 2], "empty", DT_F16, 3, zero);
    const char *path = check_path("all.safetensors");
    CHECK_OK(tw_write_safetensors(path, NULL, 0, NULL)); /* an empty file is valid */
    weights *ws = NULL;
    CHECK_OK(weights_open(path, &ws));
    CHECK(ws && weights_count(ws) == 0, "empty safetensors has tensors");
    weights_close(ws);

    tw_tensor w[N];
    uint64_t total = 0;
    for (int i = 0; i < N; i++) {
        w[i] = t[i].w;
        total += (uint64_t)t[i].numel * dtype_size(t[i].w.dtype);
    }
    CHECK_OK(tw_write_safetensors(path, w, N, "{\"format\":\"pt\"}"));
    CHECK_OK(weights_open(path, &ws));
    if (ws) {
        CHECK(weights_count(ws) == N, "count %d, want %d", weights_count(ws), N);
        CHECK(weights_total_bytes(ws) == total, "total bytes %llu, want %llu",
              (unsigned long long)weights_total_bytes(ws), (unsigned long long)total);
        CHECK(!strcmp(weights_path(ws), path), "path %s", weights_path(ws));
        CHECK(weights_file_count(ws) == 1 && !strcmp(weights_file(ws, 0), path), "files");
        for (int i = 0; i < N; i++)
            check_entry(ws, &t[i]);
        CHECK(weights_find(ws, "missing") == NULL, "found a missing tensor");
        weights_close(ws);
    }
    tt_free(t, N);
}

static void test_sharded(void)
{
    enum { N = 14 };
    static char names[N][48];
    tt t[N];
    tw_tensor w[N];
    for (int i = 0; i < N; i++) {
        int64_t shape[2] = {1 + i % 3, 8 + i};
        snprintf(names[i], sizeof names[i], "blocks.%d.%s", i, i % 2 ? "q.weight" : "k.bias");
        tt_make(&t[i], names[i], i % 3 ? DT_BF16 : DT_F32, 2, shape);
        w[i] = t[i].w;
    }
    char dir[600];
    snprintf(dir, sizeof dir, "%s", check_path("sharded"));
    mkdir(dir, 0755);
    CHECK_OK(tw_write_sharded(dir, "diffusion_pytorch_model", w, N, 3));
    char index[700];
    snprintf(index, sizeof index, "%s/diffusion_pytorch_model.safetensors.index.json", dir);
    for (int via_dir = 0; via_dir < 2; via_dir++) {
        weights *ws = NULL;
        CHECK_OK(weights_open(via_dir ? dir : index, &ws));
        if (!ws)
            continue;
        CHECK(weights_count(ws) == N, "count %d", weights_count(ws));
        CHECK(weights_file_count(ws) == 3, "shards opened %d", weights_file_count(ws));
        CHECK(!strcmp(weights_dir(ws), dir), "dir %s", weights_dir(ws));
        for (int i = 0; i < N; i++)
            check_entry(ws, &t[i]);
        /* natural order: blocks.2 before blocks.10 */
        for (int i = 0; i + 1 < weights_count(ws); i++)
            CHECK(weights_name_cmp(weights_at(ws, i)->name, weights_at(ws, i + 1)->name) < 0,
                  "order %s, %s", weights_at(ws, i)->name, weights_at(ws, i + 1)->name);
        CHECK(!strcmp(weights_at(ws, 2)->name, "blocks.2.k.bias"), "third is %s", weights_at(ws, 2)->name);
        weights_close(ws);
    }
    tt_free(t, N);
}

static void pth_case(const char *file, enum dtype dt, int n, const char *nest)
{
    char (*names)[48] = malloc((size_t)n * sizeof *names);
    tt *t = malloc((size_t)n * sizeof *t);
    tw_tensor *w = malloc((size_t)n * sizeof *w);
    for (int i = 0; i < n; i++) {
        int ndim = i % 4;
        int64_t shape[3] = {2 + i % 3, 3, 1 + i % 2};
        snprintf(names[i], sizeof names[i], "blocks.%d.ffn.%d.weight", i / 3, i % 3);
        tt_make(&t[i], names[i], dt, ndim, shape);
        w[i] = t[i].w;
    }
    const char *path = check_path(file);
    CHECK_OK(tw_write_pth(path, w, n, nest));
    weights *ws = NULL;
    CHECK_OK(weights_open(path, &ws));
    if (ws) {
        CHECK(weights_count(ws) == n, "%s: count %d, want %d", file, weights_count(ws), n);
        for (int i = 0; i < n; i++) {
            char full[128];
            snprintf(full, sizeof full, "%s%s%s", nest ? nest : "", nest ? "." : "", names[i]);
            t[i].w.name = full;
            check_entry(ws, &t[i]);
            t[i].w.name = names[i];
        }
        weights_close(ws);
    }
    tt_free(t, n);
    free(t);
    free(w);
    free(names);
}

/* Views torch.save keeps as they are: a transposed matrix and a strided slice with an offset,
 * both over one shared storage, written as the pickle torch emits for them. */
static void test_pth_strided(void)
{
    static const uint8_t pkl[] = {
        0x80, 2, '}', 'q', 0,
        /* 't': _rebuild_tensor_v2(storage 0 (f32, 6), 0, (3, 2), (1, 3), False, OrderedDict()) */
        'X', 1, 0, 0, 0, 't', 'q', 1,
        'c', 't', 'o', 'r', 'c', 'h', '.', '_', 'u', 't', 'i', 'l', 's', '\n',
        '_', 'r', 'e', 'b', 'u', 'i', 'l', 'd', '_', 't', 'e', 'n', 's', 'o', 'r', '_', 'v', '2', '\n',
        'q', 2, '(', '(', 'X', 7, 0, 0, 0, 's', 't', 'o', 'r', 'a', 'g', 'e', 'q', 3,
        'c', 't', 'o', 'r', 'c', 'h', '\n', 'F', 'l', 'o', 'a', 't', 'S', 't', 'o', 'r', 'a', 'g', 'e', '\n',
        'q', 4, 'X', 1, 0, 0, 0, '0', 'q', 5, 'X', 3, 0, 0, 0, 'c', 'p', 'u', 'q', 6, 'K', 6, 't', 'q', 7,
        'Q', 'K', 0, 'K', 3, 'K', 2, 0x86, 'K', 1, 'K', 3, 0x86, 0x89,
        'c', 'c', 'o', 'l', 'l', 'e', 'c', 't', 'i', 'o', 'n', 's', '\n',
        'O', 'r', 'd', 'e', 'r', 'e', 'd', 'D', 'i', 'c', 't', '\n', 'q', 8, ')', 'R', 't', 'R', 's',
        /* 's': _rebuild_tensor_v2(same storage, 2, (2,), (2,), False, OrderedDict()) */
        'X', 1, 0, 0, 0, 's', 'h', 2, '(', '(', 'h', 3, 'h', 4, 'h', 5, 'h', 6, 'K', 6, 't', 'Q',
        'K', 2, 'K', 2, 0x85, 'K', 2, 0x85, 0x89, 'h', 8, ')', 'R', 't', 'R', 's', '.'};
    const char *path = check_path("strided.pth");
    uint64_t bytes = 24;
    CHECK_OK(tw_write_pth_raw(path, pkl, sizeof pkl, 1, &bytes));
    /* fill the storage with 0..5: rewrite the zeros the raw writer put there */
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL, "reopen %s", path);
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    uint8_t *all = malloc((size_t)size);
    fseek(f, 0, SEEK_SET);
    CHECK(fread(all, 1, (size_t)size, f) == (size_t)size, "read back");
    long at = -1;
    for (long i = 0; i + 9 < size && at < 0; i++) /* the payload follows the "FB" padding */
        if (!memcmp(all + i, "strided/data/0", 14))
            at = i + 14;
    CHECK(at > 0, "data/0 record not found");
    if (at > 0) {
        at += 4 + (long)(all[at + 2] | (all[at + 3] << 8));
        float v[6] = {0, 1, 2, 3, 4, 5};
        fseek(f, at, SEEK_SET);
        fwrite(v, 4, 6, f);
        CHECK(at % 64 == 0, "payload at %ld is not 64-byte aligned", at);
    }
    fclose(f);
    free(all);
    weights *ws = NULL;
    CHECK_OK(weights_open(path, &ws));
    if (!ws)
        return;
    const weight_entry *t = weights_find(ws, "t"), *s = weights_find(ws, "s");
    CHECK(t && s, "strided tensors missing");
    if (t && s) {
        CHECK(t->t.stride[0] == 1 && t->t.stride[1] == 3, "t strides %lld %lld",
              (long long)t->t.stride[0], (long long)t->t.stride[1]);
        float got[6] = {0}, want_t[6] = {0, 3, 1, 4, 2, 5}, want_s[2] = {2, 4};
        CHECK_OK(weights_read_f32(t, got));
        CHECK(!memcmp(got, want_t, sizeof want_t), "transposed read %g %g %g %g %g %g", got[0],
              got[1], got[2], got[3], got[4], got[5]);
        CHECK_OK(weights_read_f32(s, got));
        CHECK(!memcmp(got, want_s, sizeof want_s), "sliced read %g %g", got[0], got[1]);
        CHECK((const char *)s->t.data - (const char *)t->t.data == 8, "offset view starts 8 bytes in");
    }
    weights_close(ws);
}

/* Pickle protocol 4 as torch.save(..., pickle_protocol=4) writes it (FRAME, MEMOIZE,
 * SHORT_BINUNICODE, STACK_GLOBAL): the data.pkl of {'generator_ema': nn.Linear(3, 2).state_dict()}
 * saved by torch 1.13, byte for byte. */
static void test_pth_protocol4(void)
{
    static const uint8_t pkl[] = {
        0x80, 0x04, 0x95, 0x08, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7d, 0x94, 0x8c, 0x0d, 0x67,
        0x65, 0x6e, 0x65, 0x72, 0x61, 0x74, 0x6f, 0x72, 0x5f, 0x65, 0x6d, 0x61, 0x94, 0x8c, 0x0b, 0x63,
        0x6f, 0x6c, 0x6c, 0x65, 0x63, 0x74, 0x69, 0x6f, 0x6e, 0x73, 0x94, 0x8c, 0x0b, 0x4f, 0x72, 0x64,
        0x65, 0x72, 0x65, 0x64, 0x44, 0x69, 0x63, 0x74, 0x94, 0x93, 0x94, 0x29, 0x52, 0x94, 0x28, 0x8c,
        0x06, 0x77, 0x65, 0x69, 0x67, 0x68, 0x74, 0x94, 0x8c, 0x0c, 0x74, 0x6f, 0x72, 0x63, 0x68, 0x2e,
        0x5f, 0x75, 0x74, 0x69, 0x6c, 0x73, 0x94, 0x8c, 0x12, 0x5f, 0x72, 0x65, 0x62, 0x75, 0x69, 0x6c,
        0x64, 0x5f, 0x74, 0x65, 0x6e, 0x73, 0x6f, 0x72, 0x5f, 0x76, 0x32, 0x94, 0x93, 0x94, 0x28, 0x28,
        0x8c, 0x07, 0x73, 0x74, 0x6f, 0x72, 0x61, 0x67, 0x65, 0x94, 0x8c, 0x05, 0x74, 0x6f, 0x72, 0x63,
        0x68, 0x94, 0x8c, 0x0c, 0x46, 0x6c, 0x6f, 0x61, 0x74, 0x53, 0x74, 0x6f, 0x72, 0x61, 0x67, 0x65,
        0x94, 0x93, 0x94, 0x8c, 0x01, 0x30, 0x94, 0x8c, 0x03, 0x63, 0x70, 0x75, 0x94, 0x4b, 0x06, 0x74,
        0x94, 0x51, 0x4b, 0x00, 0x4b, 0x02, 0x4b, 0x03, 0x86, 0x94, 0x4b, 0x03, 0x4b, 0x01, 0x86, 0x94,
        0x89, 0x68, 0x04, 0x29, 0x52, 0x94, 0x74, 0x94, 0x52, 0x94, 0x8c, 0x04, 0x62, 0x69, 0x61, 0x73,
        0x94, 0x68, 0x09, 0x28, 0x28, 0x68, 0x0a, 0x68, 0x0d, 0x8c, 0x01, 0x31, 0x94, 0x68, 0x0f, 0x4b,
        0x02, 0x74, 0x94, 0x51, 0x4b, 0x00, 0x4b, 0x02, 0x85, 0x94, 0x4b, 0x01, 0x85, 0x94, 0x89, 0x68,
        0x04, 0x29, 0x52, 0x94, 0x74, 0x94, 0x52, 0x94, 0x75, 0x7d, 0x94, 0x8c, 0x09, 0x5f, 0x6d, 0x65,
        0x74, 0x61, 0x64, 0x61, 0x74, 0x61, 0x94, 0x68, 0x04, 0x29, 0x52, 0x94, 0x8c, 0x00, 0x94, 0x7d,
        0x94, 0x8c, 0x07, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x94, 0x4b, 0x01, 0x73, 0x73, 0x73,
        0x62, 0x73, 0x2e
    };
    const uint64_t bytes[2] = {24, 8};
    const char *path = check_path("p4.pt");
    CHECK_OK(tw_write_pth_raw(path, pkl, sizeof pkl, 2, bytes));
    weights *ws = NULL;
    CHECK_OK(weights_open(path, &ws));
    if (!ws)
        return;
    const weight_entry *w = weights_find(ws, "generator_ema.weight"), *b = weights_find(ws, "generator_ema.bias");
    CHECK(weights_count(ws) == 2 && w && b, "protocol 4: %d tensors", weights_count(ws));
    if (w && b) {
        CHECK(w->t.dtype == DT_F32 && w->t.ndim == 2 && w->t.shape[0] == 2 && w->t.shape[1] == 3 &&
                  w->t.stride[0] == 3 && w->t.stride[1] == 1,
              "protocol 4 weight view");
        CHECK(b->t.dtype == DT_F32 && b->t.ndim == 1 && b->t.shape[0] == 2, "protocol 4 bias view");
        float got[6] = {1, 1, 1, 1, 1, 1};
        CHECK_OK(weights_read_f32(w, got));
        CHECK(got[0] == 0 && got[5] == 0, "protocol 4 values");
    }
    weights_close(ws);
}

/* Folder resolution: the index, else the one .safetensors, else the one PyTorch checkpoint. */
static void test_folders(void)
{
    static const float v[4] = {1, 2, 3, 4};
    tw_tensor a = {"dit.w", DT_F32, 1, {4}, v}, b = {"vae.w", DT_F32, 1, {2}, v};
    char dir[600], file[700];
    snprintf(dir, sizeof dir, "%s", check_path("release"));
    mkdir(dir, 0755);
    weights *ws = NULL;
    int st = weights_open(dir, &ws);
    CHECK(st == REEL_E_NOT_FOUND && strstr(err_msg(), dir), "empty folder: %d %s", st, err_msg());
    snprintf(file, sizeof file, "%s/Wan2.1_VAE.pth", dir);
    CHECK_OK(tw_write_pth(file, &b, 1, NULL));
    CHECK_OK(weights_open(dir, &ws)); /* the only checkpoint */
    CHECK(ws && weights_find(ws, "vae.w"), "folder with one .pth");
    weights_close(ws);
    snprintf(file, sizeof file, "%s/models_t5.pth", dir);
    CHECK_OK(tw_write_pth(file, &b, 1, NULL));
    st = weights_open(dir, &ws);
    CHECK(st == REEL_E_INVALID && strstr(err_msg(), "Wan2.1_VAE.pth") && strstr(err_msg(), "models_t5.pth"),
          "two .pth: %d %s", st, err_msg());
    /* the Wan release: DiT safetensors beside the T5 and VAE .pth: the safetensors wins */
    snprintf(file, sizeof file, "%s/diffusion_pytorch_model.safetensors", dir);
    CHECK_OK(tw_write_safetensors(file, &a, 1, NULL));
    CHECK_OK(weights_open(dir, &ws));
    CHECK(ws && weights_count(ws) == 1 && weights_find(ws, "dit.w"), "release folder picks the DiT");
    weights_close(ws);
    snprintf(file, sizeof file, "%s/other.safetensors", dir);
    CHECK_OK(tw_write_safetensors(file, &a, 1, NULL));
    st = weights_open(dir, &ws);
    CHECK(st == REEL_E_INVALID && strstr(err_msg(), "other.safetensors"), "two safetensors: %d %s", st,
          err_msg());
    CHECK_OK(tw_write_sharded(dir, "diffusion_pytorch_model", &a, 1, 1));
    CHECK_OK(weights_open(dir, &ws)); /* an index settles it */
    CHECK(ws && weights_count(ws) == 1, "folder with an index");
    weights_close(ws);
}

int main(void)
{
    check_seed("test_loader_roundtrip");
    test_safetensors_all_dtypes();
    test_sharded();
    pth_case("f32.pth", DT_F32, 7, NULL);
    pth_case("bf16.pt", DT_BF16, 9, NULL);
    pth_case("f16.ckpt", DT_F16, 5, NULL);
    pth_case("nested.pt", DT_F32, 6, "generator_ema");
    pth_case("memo.pth", DT_BF16, 60, NULL);    /* > 256 memo slots: LONG_BINPUT/LONG_BINGET */
    pth_case("batches.pth", DT_F16, 1003, NULL); /* two SETITEMS batches */
    test_pth_strided();
    test_pth_protocol4();
    test_folders();
    return check_done();
}
