/* The reel command-line program: one file per command, each a thin layer over the library.
 * A command gets argv with argv[0] = its own name and returns the process exit status
 * (0 success, 1 failure with a one-line message on stderr, 2 bad usage). */
#ifndef REEL_CLI_H
#define REEL_CLI_H

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_command;

typedef struct weights weights;
typedef struct tensor tensor;
/* Tensor `name` of an input file as contiguous f32 host memory (*data, caller frees), viewed by
 * *t in its stored shape; a missing or non-float tensor is named with 'see reel <cmd> --help'. */
int cli_read_f32(const weights *ws, const char *cmd, const char *name, float **data, tensor *t);

/* Prints "reel <cmd>: <message>" for the last library failure and returns 1. */
int cli_fail(const char *cmd, int status);
/* Prints "reel <cmd>: <formatted>" and returns 2 (bad usage). */
int cli_usage_error(const char *cmd, const char *fmt, ...);

int cmd_version(int argc, char **argv);
int cmd_dit(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int bench_dit(int argc, char **argv);
int bench_generate(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_encode_text(int argc, char **argv);
int bench_t5(int argc, char **argv);
int cmd_frames_demo(int argc, char **argv);
int cmd_attn(int argc, char **argv);
int bench_attn(int argc, char **argv);
int cmd_vae(int argc, char **argv);
int bench_vae(int argc, char **argv);

#endif
