/* reel tokenize: prompt(s) -> token ids, printed one line per prompt as spm_encode
 * --output_format=id prints them, so the two can be compared line by line. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include "dit/error.h"
#include "dit/tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: reel tokenize --model PATH (--text TEXT | --file F)\n"
    "                     [--no-eos] [--clean] [--max-len N]\n"
    "  --model PATH  spiece.model, tokenizer.json, or a folder holding one (e.g. google/umt5-xxl)\n"
    "  --text TEXT   the prompt\n"
    "  --file F      one prompt per line ('-': standard input)\n"
    "  --no-eos      do not append </s>\n"
    "  --clean       apply Wan's prompt cleaning first (HTML entities, whitespace, part of ftfy)\n"
    "  --max-len N   keep at most N ids, </s> last (default 512, as Wan's umT5; 0: no limit)\n"
    "Prints the ids of each prompt on one line, separated by spaces.\n";

typedef struct tokenize_opts {
    const char *model, *text, *file;
    int add_eos, clean, max_len;
} tokenize_opts;

static int encode_line(const tokenizer *tk, const tokenize_opts *o, const char *line)
{
    char *cleaned = NULL;
    if (o->clean) {
        TRY(tok_clean_prompt(line, &cleaned));
        line = cleaned;
    }
    int32_t *ids = NULL;
    int n = 0, st;
    if (o->max_len == 0) {
        st = tok_encode_all(tk, line, o->add_eos, &ids, &n);
    } else if (!(ids = malloc(sizeof *ids * (size_t)o->max_len))) {
        st = err_set(REEL_E_NOMEM, "%d ids", o->max_len);
    } else {
        st = tok_encode(tk, line, o->add_eos, o->max_len, ids, &n);
    }
    free(cleaned);
    if (st < 0) {
        free(ids);
        return st;
    }
    for (int i = 0; i < n; i++)
        printf(i ? " %d" : "%d", (int)ids[i]);
    putchar('\n');
    free(ids);
    return REEL_OK;
}

static int encode_file(const tokenizer *tk, const tokenize_opts *o)
{
    FILE *f = strcmp(o->file, "-") ? fopen(o->file, "rb") : stdin;
    if (!f)
        return err_set(REEL_E_IO, "%s: %s", o->file, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int st = REEL_OK;
    while (st >= 0 && (len = getline(&line, &cap, f)) >= 0) {
        if (len && line[len - 1] == '\n')
            line[len - 1] = 0;
        st = encode_line(tk, o, line);
    }
    if (st >= 0 && ferror(f))
        st = err_set(REEL_E_IO, "%s: read error", o->file);
    free(line);
    if (f != stdin)
        fclose(f);
    return st;
}

static int parse_args(int argc, char **argv, tokenize_opts *o)
{
    *o = (tokenize_opts){NULL, NULL, NULL, 1, 0, 512};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **value = !strcmp(a, "--model")  ? &o->model
                             : !strcmp(a, "--text") ? &o->text
                             : !strcmp(a, "--file") ? &o->file
                                                    : NULL;
        if (value || !strcmp(a, "--max-len")) {
            if (i + 1 >= argc)
                return cli_usage_error("tokenize", "%s needs a value", a);
            const char *v = argv[++i];
            if (value) {
                *value = v;
                continue;
            }
            char *end;
            errno = 0;
            long n = strtol(v, &end, 10);
            if (errno || *end || end == v || n < 0 || n > 1 << 30)
                return cli_usage_error("tokenize", "--max-len '%s' is not a count", v);
            o->max_len = (int)n;
        } else if (!strcmp(a, "--no-eos")) {
            o->add_eos = 0;
        } else if (!strcmp(a, "--clean")) {
            o->clean = 1;
        } else {
            return cli_usage_error("tokenize", "unknown option '%s'", a);
        }
    }
    if (!o->model)
        return cli_usage_error("tokenize", "--model is required");
    if (!o->text == !o->file)
        return cli_usage_error("tokenize", "give exactly one of --text and --file");
    return 0;
}

int cmd_tokenize(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
    tokenize_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    tokenizer *tk;
    int st = tok_load(o.model, &tk);
    if (st < 0)
        return cli_fail("tokenize", st);
    st = o.text ? encode_line(tk, &o, o.text) : encode_file(tk, &o);
    tok_free(tk);
    if (st < 0)
        return cli_fail("tokenize", st);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        err_set(REEL_E_IO, "standard output: write error");
        return cli_fail("tokenize", REEL_E_IO);
    }
    return 0;
}
