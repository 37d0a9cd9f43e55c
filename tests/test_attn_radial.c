/* The Radial Attention mask (attention/attn_radial_mask.c) against a literal re-implementation
 * of the reference's gen_log_mask_shrinked (element tiles materialised, padded to their token
 * offset, shrunk by shrinkMaskStrict, OR-ed), the element rule against values worked out by
 * hand from the spec, how much of the element rule the block mask keeps, and the radial
 * plugin on the CPU (dense steps/layers, then the block mask). */
#include "check.h"
#include "test_attn_naive.h"

#include "attention/attn.h"
#include "attention/attn_radial_mask.h"
#include "dit/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int bitlen(long v)
{
    int n = 0;
    for (; v > 0; v >>= 1)
        n++;
    return n;
}

/* get_window_width / get_diagonal_split_mask, model_type "wan", as floats like Python */
static double py_window(long P, int d, double decay)
{
    if (d < 1)
        return (double)P;
    if (d == 1)
        return (double)(P / 2);
    double len = pow(2, bitlen(P)) / pow(2, bitlen(d)) * decay;
    return len >= 128 ? len : 128;
}

static int py_split(long P, int d)
{
    double len = pow(2, bitlen(P)) / pow(2, bitlen(d));
    if (len >= 128)
        return 1;
    long factor = (long)(128 / len);
    return d % factor == 0;
}

/* gen_log_mask_shrinked with the mask sized to cover every token (ceil), see the header of
 * attn_radial_mask.c for why; keep: [nb][nb] */
static void literal_mask(int F, long P, long extra, double decay, uint8_t *keep, int nb)
{
    long video = F * P;
    int border = (int)(video / 128);
    memset(keep, 0, (size_t)nb * nb);
    for (int r = 0; r < nb; r++)
        for (int c = 0; c < nb; c++)
            keep[r * nb + c] = r >= border || c >= border;
    long kb = (P - 1) / 128 + 1;
    uint8_t *tile = malloc((size_t)P * P);
    for (int i = 0; i < F; i++)
        for (int j = 0; j < F; j++) {
            int d = abs(i - j);
            double w = py_window(P, d, decay);
            int split = py_split(P, d);
            for (long a = 0; a < P; a++)
                for (long b = 0; b < P; b++)
                    tile[a * P + b] = j == 0 ? 1 : (fabs((double)(a - b)) <= w && split);
            long rr = (i * P) % 128, rc = (j * P) % 128;
            long lr = rr + kb * 128, lc = rc + kb * 128;
            uint8_t *pad = calloc((size_t)(lr * lc), 1);
            for (long a = 0; a < P; a++)
                memcpy(pad + (rr + a) * lc + rc, tile + a * P, (size_t)P);
            long bn = lr / 128; /* shrinkMaskStrict: seqlen = rows; both sides cut to bn blocks */
            for (long R = 0; R < bn; R++)
                for (long C = 0; C < bn; C++) {
                    double nonzero = 0, high = 0;
                    for (long c = C * 128; c < C * 128 + 128; c++) {
                        double dens = 0;
                        for (long r = R * 128; r < R * 128 + 128; r++)
                            dens += pad[r * lc + c];
                        dens /= 128;
                        nonzero += dens > 0;
                        high += dens > 1.0 / 3;
                    }
                    long row = i * P / 128 + R, col = j * P / 128 + C;
                    if (high / (nonzero + 1e-9) > 0.6 && row < nb && col < nb)
                        keep[row * nb + col] = 1;
                }
            free(pad);
        }
    free(tile);
}

static void check_against_literal(int F, long P, long extra, double decay)
{
    attn_radial_geom g = {F, P, extra, decay};
    attn_block_mask m;
    CHECK_OK(attn_radial_block_mask(&g, &m));
    int nb = attn_blocks(F * P + extra);
    uint8_t *lit = malloc((size_t)nb * nb);
    literal_mask(F, P, extra, decay, lit, nb);
    int diff = 0;
    for (int i = 0; i < nb * nb; i++)
        diff += (m.keep[i] != 0) != (lit[i] != 0);
    /* the list form holds exactly the kept blocks, ascending per row */
    int list_ok = m.q_blocks == nb && m.row_start[0] == 0 && m.row_start[nb] == m.nnz;
    for (int r = 0; r < nb && list_ok; r++)
        for (int32_t x = m.row_start[r]; x < m.row_start[r + 1]; x++)
            list_ok &= m.keep[r * nb + m.cols[x]] && (x == m.row_start[r] || m.cols[x - 1] < m.cols[x]);
    printf("  %2d frames x %4ld tokens + %3ld, decay %.1f: %3dx%-3d blocks, density %.3f, %d differ\n",
           F, P, extra, decay, nb, nb, attn_block_mask_density(&m), diff);
    CHECK(diff == 0, "F %d P %ld extra %ld decay %g: %d blocks differ from the literal reference", F,
          P, extra, decay, diff);
    CHECK(list_ok, "list form does not match keep");
    free(lit);
    attn_block_mask_release(&m);
}

/* Hand-worked values for Wan 480p frames (P = 30*52 = 1560, bit length 11, 2^11 = 2048). */
static void check_rule_values(void)
{
    attn_radial_geom g = {21, 1560, 0, 1.0};
    CHECK(attn_radial_window(&g, 0) == 1560, "w(0) = P");
    CHECK(attn_radial_window(&g, 1) == 780, "w(1) = P/2");
    CHECK(attn_radial_window(&g, 2) == 512 && attn_radial_window(&g, 3) == 512, "w(2..3) = 2048/4");
    CHECK(attn_radial_window(&g, 7) == 256, "w(4..7) = 2048/8");
    CHECK(attn_radial_window(&g, 15) == 128 && attn_radial_window(&g, 16) == 128,
          "w = 128 from d = 8 on (2048/16 = 128, then the floor of one block)");
    CHECK(attn_radial_pair_kept(&g, 15) && attn_radial_pair_kept(&g, 16) &&
              !attn_radial_pair_kept(&g, 17) && attn_radial_pair_kept(&g, 18),
          "d in [16, 32): 2048/32 = 64 < 128, split factor 2: even distances only");
    g.decay_factor = 0.2;
    CHECK(attn_radial_window(&g, 2) == 128, "decay 0.2: 512*0.2 = 102.4 < 128, so w(2) = 128");
    CHECK(fabs(attn_radial_window(&g, 1) - 780) < 1e-12, "d = 1 stays P/2");
    /* tokens: frame 3 token 100 vs frame 1 token 700 (d = 2, w 128 with decay 0.2) */
    CHECK(!attn_radial_keep(&g, 3 * 1560 + 100, 1 * 1560 + 700), "|100-700| > 128");
    CHECK(attn_radial_keep(&g, 3 * 1560 + 100, 1 * 1560 + 200), "|100-200| <= 128");
    CHECK(attn_radial_keep(&g, 20 * 1560 + 5, 0 * 1560 + 1500), "frame 0 is a sink");
    CHECK(!attn_radial_keep(&g, 19 * 1560 + 5, 2 * 1560 + 5), "d = 17 is split away");
    CHECK(attn_radial_keep(&g, 21 * 1560 + 3, 5), "tokens past the video are dense");
}

/* How much of the element rule the block mask keeps (and how much it adds). */
static void check_coverage(int F, long P, double decay)
{
    attn_radial_geom g = {F, P, 0, decay};
    attn_block_mask m;
    CHECK_OK(attn_radial_block_mask(&g, &m));
    long N = F * P;
    double rule = 0, rule_in = 0, in_blocks = 0;
    for (long q = 0; q < N; q++)
        for (long k = 0; k < N; k++) {
            int r = attn_radial_keep(&g, q, k);
            int b = m.keep[(q / 128) * m.kv_blocks + k / 128];
            rule += r;
            rule_in += r && b;
            in_blocks += b;
        }
    double recall = rule_in / rule, precision = rule_in / in_blocks;
    printf("  coverage %d x %ld decay %.1f: element rule density %.3f, kept by blocks %.3f, "
           "block elements on the rule %.3f\n",
           F, P, decay, rule / ((double)N * N), recall, precision);
    /* The 60 %/one-third shrink drops blocks the band only grazes and keeps blocks it mostly
     * fills, so neither side is exact; the mask must hold the bulk of the rule (recall) and be
     * clearly tighter than computing everything (precision above the rule's own density). */
    CHECK(recall > 0.9, "block mask keeps only %.3f of the element rule", recall);
    CHECK(precision > rule / ((double)N * N) + 0.1,
          "only %.3f of the block mask is on the element rule", precision);
    /* sink column and diagonal are always computed */
    int sink = 1, diag = 1;
    for (int r = 0; r < m.q_blocks; r++) {
        sink &= m.keep[r * m.kv_blocks];
        diag &= m.keep[r * m.kv_blocks + r];
    }
    CHECK(sink && diag, "every query block attends key block 0 and its own block");
    attn_block_mask_release(&m);
}

static int keep_by_mask(const void *ctx, int64_t qi, int64_t ki)
{
    const attn_block_mask *m = ctx;
    return m->keep[(qi / 128) * m->kv_blocks + ki / 128];
}

static void check_plugin_cpu(void)
{
    reel_attn_config cfg = attn_config_default();
    cfg.heads = 2, cfg.head_dim = 16, cfg.model_dim = 32;
    cfg.grid_f = 6, cfg.grid_h = 8, cfg.grid_w = 24; /* P = 192: frames straddle blocks */
    cfg.num_steps = 10;                               /* dense_steps auto = 2 */
    cfg.num_layers = 3;
    const int64_t N = 6 * 192, row = 32;
    float *x = malloc(sizeof(float) * N * 3 * row), *out = malloc(sizeof(float) * N * row);
    double *ref = malloc(sizeof(double) * N * row);
    check_fill_normal(x, N * 3 * row, 1.0f);
    attn_instance *a;
    CHECK_OK(attn_instance_create("radial:decay_factor=0.5,threads=2", &cfg, &a));
    reel_attn_args args = attn_args_default();
    args.q = x, args.k = x + row, args.v = x + 2 * row, args.out = out;
    args.q_tokens = args.kv_tokens = N, args.q_row_stride = args.kv_row_stride = 3 * row;
    args.scale = 0.25f;

    attn_radial_geom g = {6, 192, 0, 0.5};
    attn_block_mask m;
    CHECK_OK(attn_radial_block_mask(&g, &m));
    CHECK(attn_block_mask_density(&m) < 0.95, "the test grid must be sparse: %g",
          attn_block_mask_density(&m));
    const struct {
        int step, layer, sparse;
    } calls[] = {{0, 2, 0}, {1, 2, 0}, {2, 0, 0}, {2, 1, 1}, {9, 2, 1}};
    for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++) {
        args.step = calls[c].step, args.layer = calls[c].layer;
        CHECK_OK(attn_instance_forward(a, &args));
        naive_attention(args.q, args.k, args.v, N, N, 2, 16, 3 * row, 3 * row, 0.25,
                        calls[c].sparse ? keep_by_mask : NULL, &m, ref, NULL);
        double e = check_rel_l2_d(out, ref, N * row);
        printf("  radial plugin step %d layer %d (%s): rel_l2 %.2e\n", calls[c].step,
               calls[c].layer, calls[c].sparse ? "sparse" : "dense", e);
        CHECK(e < 1e-6, "step %d layer %d: %g", calls[c].step, calls[c].layer, e);
    }
    args.q_tokens = N - 1;
    CHECK(attn_instance_forward(a, &args) == REEL_E_INVALID, "radial needs the whole grid");
    CHECK(strstr(err_msg(), "6x8x24") != NULL, "message names the grid: %s", err_msg());
    attn_instance_free(a);
    attn_block_mask_release(&m);
    free(x), free(out), free(ref);
}

static void report_wan_densities(void)
{
    const struct {
        const char *what;
        int f, h, w;
    } shapes[] = {{"Wan 480p 81 frames (832x480)", 21, 30, 52},
                  {"Wan 720p 81 frames (1280x720)", 21, 45, 80}};
    for (int s = 0; s < 2; s++)
        for (double decay = 0.2; decay < 1.5; decay += 0.8) {
            attn_radial_geom g = {shapes[s].f, (long)shapes[s].h * shapes[s].w, 0, decay};
            attn_block_mask m;
            CHECK_OK(attn_radial_block_mask(&g, &m));
            double d = attn_block_mask_density(&m);
            printf("  %s, decay %.1f: %d blocks per side, density %.3f\n", shapes[s].what, decay,
                   m.q_blocks, d);
            CHECK(d > 0 && d < 1, "density %g", d);
            attn_block_mask_release(&m);
        }
}

int main(void)
{
    check_seed("test_attn_radial");
    check_rule_values();
    check_against_literal(5, 128, 0, 1.0);  /* block-aligned frames */
    check_against_literal(7, 200, 0, 1.0);  /* frames straddle blocks, ragged tail */
    check_against_literal(9, 96, 0, 0.2);   /* frames smaller than a block: split rule at d=1 */
    check_against_literal(6, 300, 77, 0.5); /* extra (text) tokens */
    check_against_literal(8, 520, 0, 0.2);
    check_against_literal(3, 1560, 0, 1.0); /* Wan 480p frames */
    check_coverage(8, 400, 1.0);
    check_coverage(9, 520, 0.2);
    check_plugin_cpu();
    report_wan_densities();
    return check_done();
}
