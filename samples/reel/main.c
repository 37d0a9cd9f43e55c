/* reel command-line entry: dispatches to one command per file. */
#include "cli.h"

#include "dit/error.h"
#include "plugin/reel.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const cli_command commands[] = {
    {"version", cmd_version, "print the version and which optional features this build has"},
    {"attn", cmd_attn, "attention plugins: list them and their options, show the Radial mask"},
    {"generate", cmd_generate, "render a video from a text prompt (Wan2.1 text-to-video)"},
    {"dit", cmd_dit, "one DiT forward: latent, timestep, context in; velocity out (safetensors)"},
    {"bench", cmd_bench, "performance measurements (reel bench --help)"},
    {"info", cmd_info, "list the tensors of a checkpoint and detect which model it is"},
    {"tokenize", cmd_tokenize, "turn prompts into umT5 token ids (SentencePiece unigram)"},
    {"encode-text", cmd_encode_text, "umT5 text encoder: prompt or ids in, context out (safetensors)"},
    {"frames-demo", cmd_frames_demo, "write a test pattern to .mp4/.mkv/.mov/.png/.y4m to check the output"},
    {"vae", cmd_vae, "Wan VAE decode/encode: latents <-> video (safetensors)"},
};

int cli_fail(const char *cmd, int status)
{
    const char *msg = err_msg();
    fprintf(stderr, "reel %s: %s\n", cmd, msg && *msg ? msg : reel_status_name(status));
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "reel %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'reel %s --help')\n", cmd);
    return 2;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: reel <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'reel <command> --help' describes each command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version"))
        return cmd_version(1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "reel: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
