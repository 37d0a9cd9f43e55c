/* reel encode-text: prompt (or token ids) -> umT5 context, written as safetensors so that any
 * other implementation's text encoder can be compared with reel's on the same ids. */
#include "cli.h"

#include "dit/error.h"
#include "dit/st_write.h"
#include "dit/t5_encoder.h"
#include "dit/tokenizer.h"
#include "vae_io/out_file.h"
#include "dit/clock.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage_text[] =
    "usage: reel encode-text --model T5 (--prompt TEXT | --ids \"1 2 3\") -o OUT.safetensors\n"
    "                        [--tokenizer TOK] [--backend cpu|cuda] [--overwrite]\n"
    "  --model T5       the umT5 encoder: Wan's models_t5_umt5-xxl-enc-bf16.pth, a Hugging Face\n"
    "                   text_encoder/ folder (sharded safetensors + config.json), ComfyUI's\n"
    "                   umt5_xxl_fp16.safetensors, or a Wan / diffusers model folder\n"
    "  --prompt TEXT    cleaned as Wan cleans prompts, tokenized with </s> appended and cut to "
    "512\n"
    "  --ids \"1 2 3\"    token ids used as given (spaces or commas between them; end them with\n"
    "                   </s> = 1 as the tokenizer would)\n"
    "  --tokenizer TOK  spiece.model, tokenizer.json or a folder holding one; by default looked "
    "for\n"
    "                   beside the model (google/umt5-xxl/, tokenizer/)\n"
    "  --backend NAME   cpu, cuda or cuda:N (default: cuda when a device is there, else cpu)\n"
    "  -o, --output F   output file ('-': standard output); kept unless --overwrite\n"
    "Writes `context` (f32 [n, dim]: the n rows Wan's T5EncoderModel returns for the prompt, "
    "before\n"
    "the DiT pads them to 512 with zeros) and `ids` (i32 [n]), with the model's description and "
    "the\n"
    "backend in the metadata.\n";

typedef struct encode_opts {
    const char *model, *tokenizer, *prompt, *ids, *backend, *out;
    int overwrite;
} encode_opts;

static int parse_ids(const char *text, int32_t *ids, int *n)
{
    *n = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > INT32_MAX)
            return err_set(REEL_E_INVALID, "--ids: '%.20s' is not a token id", p);
        if (*n == T5_MAX_TOKENS)
            return err_set(REEL_E_INVALID, "--ids: more than %d ids", T5_MAX_TOKENS);
        ids[(*n)++] = (int32_t)v;
        p = end;
    }
    if (*n == 0)
        return err_set(REEL_E_INVALID, "--ids: no ids given");
    return REEL_OK;
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* The tokenizer a Wan release (google/umt5-xxl/) or a diffusers folder (tokenizer/) ships beside
 * the encoder. */
static int find_tokenizer(const char *model, char *buf, size_t cap)
{
    char dir[1024];
    struct stat sb;
    snprintf(dir, sizeof dir, "%s", model);
    if (stat(model, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        char *slash = strrchr(dir, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - dir) : 1, slash ? model : ".");
    }
    static const char *const cands[] = {"google/umt5-xxl", "tokenizer", "../tokenizer",
                                        "spiece.model"};
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        if ((size_t)snprintf(buf, cap, "%s/%s", dir, cands[i]) < cap && exists(buf))
            return REEL_OK;
    }
    return err_set(REEL_E_NOT_FOUND,
                   "no tokenizer found beside %s (google/umt5-xxl/, tokenizer/): give --tokenizer",
                   model);
}

static int tokenize(const encode_opts *o, int32_t *ids, int *n)
{
    char found[1100];
    const char *path = o->tokenizer;
    if (!path) {
        TRY(find_tokenizer(o->model, found, sizeof found));
        path = found;
    }
    tokenizer *tk;
    TRY(tok_load(path, &tk));
    char *clean = NULL;
    int st = tok_clean_prompt(o->prompt, &clean);
    if (st == REEL_OK)
        st = tok_encode(tk, clean, 1, T5_MAX_TOKENS, ids, n);
    free(clean);
    tok_free(tk);
    return st;
}

static int run(const encode_opts *o)
{
    int32_t ids[T5_MAX_TOKENS];
    int n = 0;
    TRY(out_file_check_target(o->out, o->overwrite));
    if (o->ids)
        TRY(parse_ids(o->ids, ids, &n));
    else
        TRY(tokenize(o, ids, &n));
    backend *be;
    if (o->backend)
        TRY(backend_create_by_name(o->backend, &be));
    else if (backend_cuda_create(0, &be) < 0) /* no GPU here: the CPU computes the same thing */
        TRY(backend_cpu_create(0, &be));
    t5_encoder *t = NULL;
    float *ctx = NULL;
    double t0 = clock_ms();
    int st = t5_load(o->model, be, &t);
    double load_ms = clock_ms() - t0, enc_ms = 0;
    if (st == REEL_OK && !(ctx = malloc(sizeof(float) * (size_t)n * t5_dim(t))))
        st = err_set(REEL_E_NOMEM, "context of %d x %d", n, t5_dim(t));
    if (st == REEL_OK) {
        t0 = clock_ms();
        st = t5_encode(t, ids, n, ctx);
        enc_ms = clock_ms() - t0;
    }
    if (st == REEL_OK) {
        int64_t cs[2] = {n, t5_dim(t)}, is = n;
        tensor tc = tensor_make(ctx, DT_F32, DEV_CPU, 2, cs),
               ti = tensor_make(ids, DT_I32, DEV_CPU, 1, &is);
        st_named named[2] = {{"context", &tc}, {"ids", &ti}};
        const char *meta[] = {"model", t5_description(t), "backend", be->ops->name, NULL};
        st = st_write_file(o->out, named, 2, meta, o->overwrite);
    }
    if (st == REEL_OK)
        fprintf(stderr, "encoded %d tokens on %s in %.1f ms (model loaded in %.0f ms) -> %s\n", n,
                be->ops->name, enc_ms, load_ms, o->out);
    free(ctx);
    t5_free(t);
    backend_free(be);
    return st;
}

int cmd_encode_text(int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"tokenizer", required_argument, 0, 't'},
                                         {"prompt", required_argument, 0, 'p'},
                                         {"ids", required_argument, 0, 'i'},
                                         {"backend", required_argument, 0, 'b'},
                                         {"output", required_argument, 0, 'o'},
                                         {"overwrite", no_argument, 0, 'w'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    encode_opts o = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model = optarg; break;
        case 't': o.tokenizer = optarg; break;
        case 'p': o.prompt = optarg; break;
        case 'i': o.ids = optarg; break;
        case 'b': o.backend = optarg; break;
        case 'o': o.out = optarg; break;
        case 'w': o.overwrite = 1; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error("encode-text", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage_error("encode-text", "unexpected argument '%s'", argv[optind]);
    if (!o.model || !o.out)
        return cli_usage_error("encode-text", "--model and -o are required");
    if (!o.prompt == !o.ids)
        return cli_usage_error("encode-text", "give exactly one of --prompt and --ids");
    int st = run(&o);
    return st < 0 ? cli_fail("encode-text", st) : 0;
}
