/* The CPU reference attention (attention/attn_ref.c) against the plain two-pass formula, with
 * strided inputs, block masks, element rules, LSE, threads, the merge of partial attentions by
 * LSE that FlashBlock-style caching relies on, and a repeated last key (compacted text context)
 * against the rows written out. */
#include "check.h"
#include "test_attn_naive.h"

#include "attention/attn_ref.h"
#include "dit/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct split_ctx {
    int64_t first, last; /* keys [first, last) */
} split_ctx;

static int keep_range(const void *ctx, int64_t qi, int64_t ki)
{
    const split_ctx *c = ctx;
    return ki >= c->first && ki < c->last;
}

static int keep_checker(const void *ctx, int64_t qi, int64_t ki) { return ((qi / 3) + ki) % 4 != 1; }

/* The block mask expanded to elements, AND an optional element rule. */
typedef struct both_ctx {
    const attn_block_mask *m;
    attn_keep_fn keep;
    const void *ctx;
} both_ctx;

static int keep_both(const void *ctx, int64_t qi, int64_t ki)
{
    const both_ctx *c = ctx;
    if (c->m && !c->m->keep[(qi / ATTN_BLOCK) * c->m->kv_blocks + ki / ATTN_BLOCK])
        return 0;
    return !c->keep || c->keep(c->ctx, qi, ki);
}

/* keep when the row has no key at all: rows 5..9 see nothing */
static int keep_none_for_some(const void *ctx, int64_t qi, int64_t ki) { return qi < 5 || qi >= 10; }

static double rel_l2_fd(const float *a, const double *b, size_t n) { return check_rel_l2_d(a, b, n); }

static void run_case(int64_t Lq, int64_t Lk, int H, int D, int pad, const attn_block_mask *mask,
                     attn_keep_fn keep, const void *ctx, int threads, const char *what)
{
    int64_t qs = (int64_t)H * D + pad, ks = (int64_t)H * D + 2 * pad;
    float *q = malloc(sizeof(float) * (size_t)(Lq * qs)), *k = malloc(sizeof(float) * (size_t)(Lk * ks));
    float *v = malloc(sizeof(float) * (size_t)(Lk * ks));
    float *out = malloc(sizeof(float) * (size_t)(Lq * H * D)), *lse = malloc(sizeof(float) * (size_t)(H * Lq));
    double *ref = malloc(sizeof(double) * (size_t)(Lq * H * D)), *rlse = malloc(sizeof(double) * (size_t)(H * Lq));
    check_fill_normal(q, (size_t)(Lq * qs), 1.0f);
    check_fill_normal(k, (size_t)(Lk * ks), 1.0f);
    check_fill_normal(v, (size_t)(Lk * ks), 1.0f);
    for (size_t i = 0; i < (size_t)(Lq * H * D); i++)
        out[i] = NAN;
    double scale = 1.0 / sqrt((double)D);

    both_ctx both = {mask, keep, ctx};
    naive_attention(q, k, v, Lq, Lk, H, D, qs, ks, scale, keep_both, &both, ref, rlse);
    attn_ref_args a = {.q = q, .k = k, .v = v, .out = out, .lse = lse, .q_tokens = Lq,
                       .kv_tokens = Lk, .q_stride = qs, .kv_stride = ks, .heads = H,
                       .head_dim = D, .scale = (float)scale, .mask = mask, .keep = keep,
                       .keep_ctx = ctx, .threads = threads};
    CHECK_OK(attn_ref_forward(&a));
    double e = rel_l2_fd(out, ref, (size_t)(Lq * H * D));
    /* lse: compare finite entries, and -inf exactly */
    int lse_bad = 0;
    for (int64_t i = 0; i < H * Lq; i++)
        if (isinf(rlse[i]) ? !(isinf(lse[i]) && lse[i] < 0) : fabs(lse[i] - rlse[i]) > 1e-5 * (1 + fabs(rlse[i])))
            lse_bad++;
    printf("  %-22s Lq %5lld Lk %5lld H %2d D %3d threads %d: rel_l2 %.2e, lse mismatches %d\n", what,
           (long long)Lq, (long long)Lk, H, D, threads, e, lse_bad);
    CHECK(e < 1e-6, "%s: rel_l2 %g", what, e);
    CHECK(lse_bad == 0, "%s: %d lse values differ", what, lse_bad);
    free(q), free(k), free(v), free(out), free(lse), free(ref), free(rlse);
}

/* Two halves of the keys, each attended separately, merged by LSE, equal the whole. */
static void check_lse_merge(void)
{
    const int64_t Lq = 70, Lk = 150;
    const int H = 2, D = 32;
    const int64_t row = H * D;
    float *q = malloc(sizeof(float) * Lq * row), *k = malloc(sizeof(float) * Lk * row);
    float *v = malloc(sizeof(float) * Lk * row);
    float *o1 = malloc(sizeof(float) * Lq * row), *o2 = malloc(sizeof(float) * Lq * row);
    float *of = malloc(sizeof(float) * Lq * row);
    float *l1 = malloc(sizeof(float) * H * Lq), *l2 = malloc(sizeof(float) * H * Lq);
    float *lf = malloc(sizeof(float) * H * Lq);
    check_fill_normal(q, Lq * row, 1.5f);
    check_fill_normal(k, Lk * row, 1.5f);
    check_fill_normal(v, Lk * row, 1.0f);
    int64_t cut = 1 + (int64_t)(check_rand_u64() % (Lk - 1));
    split_ctx c1 = {0, cut}, c2 = {cut, Lk};
    attn_ref_args a = {.q = q, .k = k, .v = v, .q_tokens = Lq, .kv_tokens = Lk, .q_stride = row,
                       .kv_stride = row, .heads = H, .head_dim = D, .scale = 0.2f, .threads = 2};
    a.out = o1, a.lse = l1, a.keep = keep_range, a.keep_ctx = &c1;
    CHECK_OK(attn_ref_forward(&a));
    a.out = o2, a.lse = l2, a.keep_ctx = &c2;
    CHECK_OK(attn_ref_forward(&a));
    a.out = of, a.lse = lf, a.keep = NULL, a.keep_ctx = NULL;
    CHECK_OK(attn_ref_forward(&a));
    double *merged = malloc(sizeof(double) * Lq * row);
    double worst_lse = 0;
    for (int h = 0; h < H; h++)
        for (int64_t i = 0; i < Lq; i++) {
            double x = l1[h * Lq + i], y = l2[h * Lq + i], m = fmax(x, y);
            double lse = m + log(exp(x - m) + exp(y - m));
            worst_lse = fmax(worst_lse, fabs(lse - lf[h * Lq + i]));
            for (int c = 0; c < D; c++) {
                int64_t at = (i * H + h) * D + c;
                merged[at] = exp(x - lse) * o1[at] + exp(y - lse) * o2[at];
            }
        }
    double e = check_rel_l2_d(of, merged, Lq * row);
    printf("  LSE merge at key %lld: rel_l2 %.2e, lse error %.2e\n", (long long)cut, e, worst_lse);
    CHECK(e < 1e-5, "merged partial attentions differ from the whole: %g", e);
    CHECK(worst_lse < 1e-4, "merged lse off by %g", worst_lse);
    free(q), free(k), free(v), free(o1), free(o2), free(of), free(l1), free(l2), free(lf), free(merged);
}

/* Same inputs, 1 thread and 3 threads: identical bits (rows are independent). */
static void check_threads_identical(void)
{
    const int64_t L = 97;
    const int H = 3, D = 16;
    size_t n = (size_t)(L * H * D);
    float *x = malloc(sizeof(float) * n), *o1 = malloc(sizeof(float) * n), *o3 = malloc(sizeof(float) * n);
    check_fill_normal(x, n, 1.0f);
    attn_ref_args a = {.q = x, .k = x, .v = x, .q_tokens = L, .kv_tokens = L, .q_stride = H * D,
                       .kv_stride = H * D, .heads = H, .head_dim = D, .scale = 0.25f};
    a.out = o1, a.threads = 1;
    CHECK_OK(attn_ref_forward(&a));
    a.out = o3, a.threads = 3;
    CHECK_OK(attn_ref_forward(&a));
    CHECK(memcmp(o1, o3, n * sizeof(float)) == 0, "1 and 3 threads give different results");
    free(x), free(o1), free(o3);
}

/* A text context of 9 rows zero-padded to 40: the 9 rows and one padding row counted 31 times
 * give the attention over all 40 rows (outputs and LSE). */
static void check_last_key_copies(void)
{
    const int64_t Lq = 23, used = 9, T = 40;
    const int H = 2, D = 16;
    const int64_t row = H * D;
    float *q = malloc(sizeof(float) * Lq * row), *k = malloc(sizeof(float) * T * row);
    float *v = malloc(sizeof(float) * T * row);
    float *full = malloc(sizeof(float) * Lq * row), *compact = malloc(sizeof(float) * Lq * row);
    float lf[2 * 23], lc[2 * 23];
    check_fill_normal(q, (size_t)(Lq * row), 1.0f);
    check_fill_normal(k, (size_t)((used + 1) * row), 1.0f);
    check_fill_normal(v, (size_t)((used + 1) * row), 1.0f);
    for (int64_t j = used + 1; j < T; j++) { /* the padding row, repeated */
        memcpy(k + j * row, k + used * row, sizeof(float) * row);
        memcpy(v + j * row, v + used * row, sizeof(float) * row);
    }
    attn_ref_args a = {.q = q, .k = k, .v = v, .out = full, .lse = lf, .q_tokens = Lq,
                       .kv_tokens = T, .q_stride = row, .kv_stride = row, .heads = H,
                       .head_dim = D, .scale = 0.25f};
    CHECK_OK(attn_ref_forward(&a));
    a.out = compact, a.lse = lc, a.kv_tokens = used + 1, a.last_key_copies = T - used;
    CHECK_OK(attn_ref_forward(&a));
    double e = check_rel_l2(compact, full, (size_t)(Lq * row)), worst = 0;
    for (int i = 0; i < H * Lq; i++)
        worst = fmax(worst, fabs((double)lc[i] - lf[i]));
    printf("| ref last key x31 vs 40 rows | 2x23x(9+1) d16 | %.2e | 1e-6 | lse %.1e |\n", e, worst);
    CHECK(e < 1e-6, "compacted context differs from the padded one: %g", e);
    CHECK(worst < 1e-5, "compacted context's lse off by %g", worst);
    a.last_key_copies = 1; /* and the count matters: once is not 31 times */
    CHECK_OK(attn_ref_forward(&a));
    CHECK(check_rel_l2(compact, full, (size_t)(Lq * row)) > 1e-2, "last_key_copies ignored");
    free(q), free(k), free(v), free(full), free(compact);
}

static void check_errors(void)
{
    float x[64];
    attn_block_mask m;
    CHECK_OK(attn_block_mask_init(&m, 300, 300));
    attn_ref_args a = {.q = x, .k = x, .v = x, .out = x, .q_tokens = 2, .kv_tokens = 2,
                       .q_stride = 16, .kv_stride = 16, .heads = 1, .head_dim = 16, .scale = 1,
                       .mask = &m};
    CHECK(attn_ref_forward(&a) == REEL_E_INVALID, "a 3x3-block mask for 2 tokens must be refused");
    CHECK(strstr(err_msg(), "3x3") != NULL, "message names the mask: %s", err_msg());
    a.mask = NULL;
    a.heads = 0;
    CHECK(attn_ref_forward(&a) == REEL_E_INVALID, "0 heads must be refused");
    attn_block_mask_release(&m);
}

int main(void)
{
    check_seed("test_attn_ref");
    run_case(37, 53, 3, 16, 0, NULL, NULL, NULL, 1, "dense");
    run_case(130, 61, 2, 64, 8, NULL, NULL, NULL, 2, "dense, strided, kv<q");
    run_case(45, 300, 4, 32, 24, NULL, keep_checker, NULL, 3, "element rule");
    run_case(20, 20, 1, 8, 0, NULL, keep_none_for_some, NULL, 2, "rows with no key");

    attn_block_mask m;
    CHECK_OK(attn_block_mask_init(&m, 300, 270));
    for (int i = 0; i < m.q_blocks * m.kv_blocks; i++)
        m.keep[i] = check_rand_u64() % 2;
    m.keep[0] = 0; /* query block 0 sees key blocks 1.. or nothing */
    run_case(300, 270, 2, 16, 4, &m, NULL, NULL, 2, "block mask");
    run_case(300, 270, 2, 16, 4, &m, keep_checker, NULL, 2, "block mask + rule");
    attn_block_mask_release(&m);

    check_lse_merge();
    check_threads_identical();
    check_last_key_copies();
    check_errors();
    return check_done();
}
