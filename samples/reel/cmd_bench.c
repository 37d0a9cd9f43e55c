/* reel bench: the performance measurements, one subcommand per part (README and
 * bench/RESULTS.md quote these). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *what;
} parts[] = {
    {"attn", bench_attn, "attention kernels at Wan shapes: reel's flash kernels, cuDNN SDPA, Radial"},
    {"dit", bench_dit, "one DiT forward at real shapes with synthetic weights, time breakdown"},
    {"vae", bench_vae, "Wan VAE decode (and encode) at real widths with synthetic weights"},
    {"t5", bench_t5, "umT5-XXL text encoder: load and encode a 512-token prompt"},
    {"generate", bench_generate, "the whole text-to-video command on synthetic checkpoints"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: reel bench <part> [options]   ('reel bench <part> --help' for options)\n\nparts:\n");
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        fprintf(f, "  %-9s %s\n", parts[i].name, parts[i].what);
}

int cmd_bench(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (!strcmp(argv[1], parts[i].name))
            return parts[i].run(argc - 1, argv + 1);
    fprintf(stderr, "reel bench: unknown part '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
