/* reel attn: the attention plugins.
 *   reel attn list [--attn-plugin PATH]...     plugins, their options and defaults
 *   reel attn mask --grid FxHxW [--text N] [--decay X] [--show]
 *                                              the Radial block mask of a token grid: tiles,
 *                                              density, and with --show a picture of it
 *   reel attn bench ...                        the same as `reel bench attn ...` */
#include "cli.h"

#include "attention/attn.h"
#include "attention/attn_radial_mask.h"
#include "dit/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int attn_list(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--attn-plugin") && i + 1 < argc) {
            const char *name;
            int st = reel_attn_load(argv[++i], &name);
            if (st < 0)
                return cli_fail("attn list", st);
        } else {
            return cli_usage_error("attn list", "unknown argument '%s'", argv[i]);
        }
    }
    int n = reel_attn_count();
    for (int i = 0; i < n; i++) {
        const reel_attn_plugin *p = reel_attn_at(i);
        printf("%s\n    %s\n", p->name, p->description ? p->description : "");
        for (const reel_attn_option *o = p->options; o && o->name; o++)
            printf("    %-14s (default %s) %s\n", o->name, o->default_value ? o->default_value : "-",
                   o->help ? o->help : "");
    }
    printf("\nuse: --attn NAME[:key=value,...]\n");
    return 0;
}

static int parse_grid(const char *s, int *f, int *h, int *w)
{
    char tail;
    return sscanf(s, "%dx%dx%d%c", f, h, w, &tail) == 3 && *f > 0 && *h > 0 && *w > 0;
}

static int attn_mask(int argc, char **argv)
{
    int f = 0, h = 0, w = 0, text = 0, show = 0;
    double decay = 0.2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--grid") && i + 1 < argc) {
            if (!parse_grid(argv[++i], &f, &h, &w))
                return cli_usage_error("attn mask", "--grid %s: expected FxHxW, e.g. 21x30x52",
                                       argv[i]);
        } else if (!strcmp(argv[i], "--text") && i + 1 < argc) {
            text = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--decay") && i + 1 < argc) {
            decay = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--show")) {
            show = 1;
        } else {
            return cli_usage_error("attn mask", "unknown argument '%s'", argv[i]);
        }
    }
    if (!f)
        return cli_usage_error("attn mask", "--grid FxHxW is required");
    attn_radial_geom g = {f, (int64_t)h * w, text, decay};
    attn_block_mask m;
    int st = attn_radial_block_mask(&g, &m);
    if (st < 0)
        return cli_fail("attn mask", st);
    printf("radial mask, grid %dx%dx%d (+%d text), decay %g: %lld tokens, %dx%d blocks of %d, "
           "%lld computed, density %.4f\n",
           f, h, w, text, decay, (long long)g.frames * g.frame_tokens + text, m.q_blocks,
           m.kv_blocks, ATTN_BLOCK, (long long)m.nnz, attn_block_mask_density(&m));
    if (show) /* one character per block, up to 128 columns: '#' kept, '.' skipped */
        for (int r = 0; r < m.q_blocks && r < 128; r++) {
            for (int c = 0; c < m.kv_blocks && c < 128; c++)
                putchar(m.keep[(size_t)r * m.kv_blocks + c] ? '#' : '.');
            putchar('\n');
        }
    attn_block_mask_release(&m);
    return 0;
}

int cmd_attn(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: reel attn list [--attn-plugin PATH]...\n"
               "       reel attn mask --grid FxHxW [--text N] [--decay X] [--show]\n"
               "       reel attn bench [options]   (as reel bench attn)\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "list"))
        return attn_list(argc - 1, argv + 1);
    if (!strcmp(argv[1], "mask"))
        return attn_mask(argc - 1, argv + 1);
    if (!strcmp(argv[1], "bench"))
        return bench_attn(argc - 1, argv + 1);
    return cli_usage_error("attn", "unknown subcommand '%s'", argv[1]);
}
