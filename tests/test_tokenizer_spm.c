/* Exact agreement with the reference SentencePiece encoder. Trains small unigram models with
 * Debian's spm_train on a corpus made from assets/tokenizer/multilingual.txt, then compares
 * `reel tokenize` with `spm_encode --output_format=id` line by line over generated lines full of
 * what normalisation and segmentation must get right: CJK, accents in NFC and NFD, emoji with ZWJ
 * and modifiers, full- and half-width forms, compatibility characters, control characters,
 * whitespace runs, literal U+2581, invalid UTF-8, and lines over 10,000 characters.
 * Two hand-made models (tests/tokenizer/spm_writer.h) add exact and near ties between
 * segmentations, which only the reference's tie-breaking and float arithmetic resolve the same way.
 * Trained models are also converted to a Hugging Face tokenizer.json, which must give the same
 * ids, and EOS/truncation are checked against the reference ids.
 * Without spm_train the test is skipped, except in CI (CI set), where that is a failure. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include "dit/error.h"
#include "dit/tok_internal.h"
#include "dit/tokenizer.h"
#include "tokenizer/spm_writer.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define N_LINES 2100
#define N_LONG 4

typedef struct model_case {
    const char *name;
    const char *options; /* spm_train options beyond the common ones */
    bool json;           /* expressible as tokenizer.json */
} model_case;

static const model_case k_models[] = {
    {"nfkc", "'--user_defined_symbols=<mask>,@@'", true},
    {"bytes", "--byte_fallback=true --normalization_rule_name=identity --character_coverage=0.98",
     true},
    {"nfkc_cf",
     "--normalization_rule_name=nmt_nfkc_cf --remove_extra_whitespaces=false "
     "--add_dummy_prefix=false",
     true},
    {"suffix", "--treat_whitespace_as_suffix=true --character_coverage=0.995", false},
};

/* ---- text generation ------------------------------------------------------------------------ */

typedef struct strbuf {
    char *p;
    size_t n, cap;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) {
            perror("realloc");
            exit(1);
        }
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_puts(strbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static const char *pick(const char *const *list, size_t n) { return list[check_rand_u64() % n]; }
#define PICK(list) pick(list, sizeof list / sizeof list[0])

static const char *const k_emoji[] = {
    "\xF0\x9F\x98\x80",
    "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
    "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7\xE2\x80\x8D\xF0\x9F"
    "\x91\xA6",
    "\xF0\x9F\x8F\xB3\xEF\xB8\x8F\xE2\x80\x8D\xF0\x9F\x8C\x88",
    "\xF0\x9F\x87\xAF\xF0\x9F\x87\xB5",
    "1\xEF\xB8\x8F\xE2\x83\xA3",
    "\xE2\x9D\xA4\xEF\xB8\x8F",
    "\xF0\x9F\xA7\x91\xF0\x9F\x8F\xBF\xE2\x80\x8D\xF0\x9F\x92\xBB",
    "\xF0\x9F\x90\xB1",
    "\xF0\x9F\x8E\x89"};
/* Compatibility and special characters: what NFKC rewrites, expands or deletes, and text that
 * looks like pieces the model reserves. */
static const char *const k_specials[] = {"\xE2\x96\x81",
                                         "\xE2\x96\x81\xE2\x96\x81",
                                         "</s>",
                                         "<unk>",
                                         "<0x41>",
                                         "<pad>",
                                         "<mask>",
                                         "@@",
                                         "\xEF\xAC\x81",
                                         "\xE3\x8D\xBB",
                                         "\xE2\x85\xAB",
                                         "\xE2\x91\xA0",
                                         "\xC2\xBD",
                                         "\xC2\xB2",
                                         "\xC2\xAD",
                                         "\xE2\x80\x8B",
                                         "\xEF\xBB\xBF",
                                         "\xEF\xBD\xB6\xEF\xBE\x9E",
                                         "\xEF\xBE\x8A\xEF\xBE\x9F",
                                         "\xE3\x8C\x94",
                                         "\xE2\x84\xA2",
                                         "\xE2\x80\xA6",
                                         "\xE2\x80\x98q\xE2\x80\x99",
                                         "\xC7\x85",
                                         "\xC4\xB0",
                                         "\xC3\x9F",
                                         "\xE1\xBA\x9E",
                                         "\xEF\xB7\xBA",
                                         "\xEF\xBF\xBD",
                                         "\xE2\x80\xA8",
                                         "\xF0\x9D\x90\x80",
                                         "\xE2\x84\x8C",
                                         "\xEF\xBC\x81\xEF\xBC\x9F",
                                         "\xE3\x80\x9C"};
static const char *const k_spaces[] = {" ",        "  ",           "\t",           " \t ",
                                       "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\x82", "     "};
static const char *const k_controls[] = {"\x01",     "\x07",     "\x1B", "\x1F", "\x7F",    "\r",
                                         "\xC2\x80", "\xC2\x9F", "\x0B", "\x0C", "\x1B[31m"};
static const char *const k_invalid[] = {
    "\x80",         "\xC3", "\xE2\x82", "\xFF", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80",
    "\xF0\x9F\x98", "\xFE", "\xC3\x28"};
/* Precomposed letters and their NFD spelling. */
static const char *const k_nfd[][2] = {{"\xC3\xA9", "e\xCC\x81"},
                                       {"\xC3\xA8", "e\xCC\x80"},
                                       {"\xC3\xAA", "e\xCC\x82"},
                                       {"\xC3\xA1", "a\xCC\x81"},
                                       {"\xC3\xA4", "a\xCC\x88"},
                                       {"\xC3\xB6", "o\xCC\x88"},
                                       {"\xC3\xBC", "u\xCC\x88"},
                                       {"\xC3\xB1", "n\xCC\x83"},
                                       {"\xC3\xA7", "c\xCC\xA7"},
                                       {"\xC3\xA5", "a\xCC\x8A"},
                                       {"\xE1\xBB\x87", "e\xCC\xA3\xCC\x82"},
                                       {"\xC5\xBC", "z\xCC\x87"},
                                       {"\xC4\x9B", "e\xCC\x8C"},
                                       {"\xE3\x81\x8C", "\xE3\x81\x8B\xE3\x82\x99"}};

typedef struct words {
    char **w;
    int n;
} words;

static words load_words(const char *path)
{
    words ws = {0};
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s (run through ctest, which sets REEL_SOURCE_DIR)\n", path);
        exit(1);
    }
    static char line[4096];
    while (fgets(line, sizeof line, f)) {
        for (char *tok = strtok(line, " \n"); tok; tok = strtok(NULL, " \n")) {
            ws.w = realloc(ws.w, sizeof *ws.w * (size_t)(ws.n + 1));
            ws.w[ws.n] = malloc(strlen(tok) + 1);
            strcpy(ws.w[ws.n++], tok);
        }
    }
    fclose(f);
    return ws;
}

/* A word as written, decomposed to NFD, or in full-width letters. */
static void put_word(strbuf *b, const char *w, int style)
{
    if (style == 1) {
        for (const char *p = w; *p;) {
            size_t k = 0;
            while (k < sizeof k_nfd / sizeof k_nfd[0] &&
                   strncmp(p, k_nfd[k][0], strlen(k_nfd[k][0])))
                k++;
            if (k < sizeof k_nfd / sizeof k_nfd[0]) {
                sb_puts(b, k_nfd[k][1]);
                p += strlen(k_nfd[k][0]);
            } else {
                sb_put(b, p++, 1);
            }
        }
    } else if (style == 2) {
        for (const char *p = w; *p; p++) {
            unsigned c = (unsigned char)*p;
            if (c > 0x20 && c < 0x7F) {
                unsigned cp = c + 0xFEE0; /* U+FF01..U+FF5E */
                char u[3] = {(char)(0xE0 | cp >> 12), (char)(0x80 | ((cp >> 6) & 0x3F)),
                             (char)(0x80 | (cp & 0x3F))};
                sb_put(b, u, 3);
            } else {
                sb_put(b, p, 1);
            }
        }
    } else {
        sb_puts(b, w);
    }
}

static void make_line(strbuf *b, const words *ws, int n_words)
{
    b->n = 0;
    sb_puts(b, "");
    if (check_rand_u64() % 6 == 0)
        sb_puts(b, PICK(k_spaces));
    for (int i = 0; i < n_words; i++) {
        if (i)
            sb_puts(b, check_rand_u64() % 5 ? " " : PICK(k_spaces));
        int r = (int)(check_rand_u64() % 40);
        if (r == 0)
            sb_puts(b, PICK(k_emoji));
        else if (r == 1)
            sb_puts(b, PICK(k_specials));
        else if (r == 2)
            sb_puts(b, PICK(k_controls));
        else if (r == 3)
            sb_puts(b, PICK(k_invalid));
        int style = r < 8 ? 1 : r < 11 ? 2 : 0;
        put_word(b, ws->w[check_rand_u64() % (uint64_t)ws->n], style);
        if (check_rand_u64() % 30 == 0)
            sb_puts(b, PICK(k_specials));
    }
    if (check_rand_u64() % 6 == 0)
        sb_puts(b, PICK(k_spaces));
}

static void write_lines(const char *path, const words *ws)
{
    FILE *f = fopen(path, "wb");
    strbuf b = {0};
    for (int i = 0; i < N_LINES; i++) {
        int n_words = i % 25 == 0 ? 0 : (int)(check_rand_u64() % 30) + 1;
        if (i % (N_LINES / N_LONG) == 1)
            n_words = 2500; /* > 10,000 characters */
        make_line(&b, ws, n_words);
        fwrite(b.p, 1, b.n, f);
        fputc('\n', f);
    }
    fclose(f);
    free(b.p);
}

static void write_corpus(const char *path, const words *ws)
{
    FILE *f = fopen(path, "wb");
    strbuf b = {0};
    for (int i = 0; i < 6000; i++) {
        b.n = 0;
        int n = (int)(check_rand_u64() % 20) + 3;
        for (int k = 0; k < n; k++) {
            if (k)
                sb_puts(&b, " ");
            sb_puts(&b, ws->w[check_rand_u64() % (uint64_t)ws->n]);
        }
        fwrite(b.p, 1, b.n, f);
        fputc('\n', f);
    }
    fclose(f);
    free(b.p);
}

/* ---- running the reference and reel -------------------------------------------------------- */

static int run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

static bool have_program(const char *name)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

typedef struct lines {
    char **v;
    int n;
} lines;

static lines read_lines(const char *path)
{
    lines ls = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return ls;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        if (len && line[len - 1] == '\n')
            line[--len] = 0;
        ls.v = realloc(ls.v, sizeof *ls.v * (size_t)(ls.n + 1));
        ls.v[ls.n] = malloc((size_t)len + 1);
        memcpy(ls.v[ls.n++], line, (size_t)len + 1);
    }
    free(line);
    fclose(f);
    return ls;
}

static void free_lines(lines *ls)
{
    for (int i = 0; i < ls->n; i++)
        free(ls->v[i]);
    free(ls->v);
    ls->v = NULL;
    ls->n = 0;
}

/* A line made printable for a failure report: escapes beyond ASCII, cut to 160 bytes. */
static void print_escaped(const char *s)
{
    int shown = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && shown < 160; p++, shown++)
        fprintf(stderr, *p >= 0x20 && *p < 0x7F ? "%c" : "\\x%02X", *p);
    fprintf(stderr, "%s\n", *s && shown >= 160 ? "..." : "");
}

static int parse_ids(const char *s, int32_t **ids)
{
    int n = 0;
    *ids = malloc(sizeof **ids * (strlen(s) / 2 + 2));
    for (char *end; *s; s = end) {
        long v = strtol(s, &end, 10);
        if (end == s)
            break;
        (*ids)[n++] = (int32_t)v;
    }
    return n;
}

/* ---- tokenizer.json from a loaded model ---------------------------------------------------- */

static char *base64(const uint8_t *p, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = a[v >> 18];
        *o++ = a[(v >> 12) & 63];
        *o++ = i + 1 < n ? a[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? a[v & 63] : '=';
    }
    *o = 0;
    return out;
}

/* The charsmap blob as the model file holds it: size, double array, replacement strings. */
static uint8_t *charsmap_blob(const tok_charsmap *m, size_t *size)
{
    *size = 4 + 4 * m->n_units + m->norm_size;
    uint8_t *b = malloc(*size);
    uint32_t trie = (uint32_t)(4 * m->n_units);
    for (int k = 0; k < 4; k++)
        b[k] = (uint8_t)(trie >> (8 * k));
    for (size_t i = 0; i < m->n_units; i++)
        for (int k = 0; k < 4; k++)
            b[4 + 4 * i + k] = (uint8_t)(m->units[i] >> (8 * k));
    memcpy(b + 4 + 4 * m->n_units, m->norm, m->norm_size);
    return b;
}

/* What transformers' SentencePiece converter writes for such a model. */
static void write_tokenizer_json(const tokenizer *t, const char *path)
{
    cJSON *root = cJSON_CreateObject(), *added = cJSON_CreateArray(), *vocab = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "version", "1.0");
    for (int i = 0; i < t->n_pieces; i++) {
        int type = t->pieces[i].type;
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(t->pieces[i].text));
        cJSON_AddItemToArray(pair, cJSON_CreateNumber(t->pieces[i].score));
        cJSON_AddItemToArray(vocab, pair);
        if (type == TOK_CONTROL || type == TOK_UNKNOWN || type == TOK_USER_DEFINED) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddNumberToObject(a, "id", i);
            cJSON_AddStringToObject(a, "content", t->pieces[i].text);
            cJSON_AddBoolToObject(a, "normalized", false);
            cJSON_AddBoolToObject(a, "special", type != TOK_USER_DEFINED);
            cJSON_AddItemToArray(added, a);
        }
    }
    cJSON_AddItemToObject(root, "added_tokens", added);

    cJSON *norms = cJSON_CreateArray();
    if (t->cmap.units) {
        size_t size;
        uint8_t *blob = charsmap_blob(&t->cmap, &size);
        char *b64 = base64(blob, size);
        cJSON *pre = cJSON_CreateObject();
        cJSON_AddStringToObject(pre, "type", "Precompiled");
        cJSON_AddStringToObject(pre, "precompiled_charsmap", b64);
        cJSON_AddItemToArray(norms, pre);
        free(b64);
        free(blob);
    }
    if (t->remove_extra_whitespaces) {
        cJSON *strip = cJSON_CreateObject(), *rep = cJSON_CreateObject(),
              *pat = cJSON_CreateObject();
        cJSON_AddStringToObject(strip, "type", "Strip");
        cJSON_AddBoolToObject(strip, "strip_left", false);
        cJSON_AddBoolToObject(strip, "strip_right", true);
        cJSON_AddItemToArray(norms, strip);
        cJSON_AddStringToObject(rep, "type", "Replace");
        cJSON_AddStringToObject(pat, "Regex", " {2,}");
        cJSON_AddItemToObject(rep, "pattern", pat);
        cJSON_AddStringToObject(rep, "content", "\xE2\x96\x81");
        cJSON_AddItemToArray(norms, rep);
    }
    cJSON *norm = cJSON_CreateObject();
    cJSON_AddStringToObject(norm, "type", "Sequence");
    cJSON_AddItemToObject(norm, "normalizers", norms);
    cJSON_AddItemToObject(root, "normalizer", norm);

    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "type", "Metaspace");
    cJSON_AddStringToObject(meta, "replacement", "\xE2\x96\x81");
    cJSON_AddStringToObject(meta, "prepend_scheme", t->add_dummy_prefix ? "always" : "never");
    cJSON_AddBoolToObject(meta, "split", true);
    cJSON_AddItemToObject(root, "pre_tokenizer", meta);

    cJSON *model = cJSON_CreateObject();
    cJSON_AddStringToObject(model, "type", "Unigram");
    cJSON_AddNumberToObject(model, "unk_id", t->unk_id);
    cJSON_AddItemToObject(model, "vocab", vocab);
    cJSON_AddBoolToObject(model, "byte_fallback", t->byte_fallback);
    cJSON_AddItemToObject(root, "model", model);

    char *text = cJSON_Print(root);
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
    free(text);
    cJSON_Delete(root);
}

/* ---- checks -------------------------------------------------------------------------------- */

static void compare_with_reference(const char *name, const lines *input, const lines *ref,
                                   const lines *ours)
{
    CHECK(ref->n == input->n && ours->n == input->n,
          "%s: %d input lines, spm_encode gave %d, reel %d", name, input->n, ref->n, ours->n);
    int bad = 0;
    for (int i = 0; i < input->n && i < ref->n && i < ours->n; i++) {
        if (!strcmp(ref->v[i], ours->v[i]))
            continue;
        if (++bad <= 5) {
            fprintf(stderr, "%s line %d differs\n  text: ", name, i + 1);
            print_escaped(input->v[i]);
            fprintf(stderr, "  spm:  %.300s\n  reel: %.300s\n", ref->v[i], ours->v[i]);
        }
    }
    CHECK(bad == 0, "%s: %d of %d lines differ from spm_encode", name, bad, input->n);
    printf("%s: %d lines compared with spm_encode, %d differ\n", name, input->n, bad);
}

/* EOS and truncation: the reference ids cut to max_len - 1, then EOS, as Hugging Face does. */
static void check_eos_truncation(const tokenizer *t, const lines *input, const lines *ref)
{
    const int max_len = 16;
    int bad = 0;
    for (int i = 0; i < input->n && i < ref->n; i++) {
        int32_t *want, got[16];
        int n_want = parse_ids(ref->v[i], &want), n_got = -1;
        if (n_want > max_len - 1)
            n_want = max_len - 1;
        want[n_want++] = tok_eos_id(t);
        int st = tok_encode(t, input->v[i], 1, max_len, got, &n_got);
        if (st < 0 || n_got != n_want || memcmp(got, want, sizeof *got * (size_t)n_want))
            bad++;
        free(want);
    }
    CHECK(bad == 0, "%d lines: EOS/truncation to 16 ids differs from the reference ids", bad);
}

static void check_json_matches(const char *name, const tokenizer *model, const char *json_path,
                               const lines *input)
{
    tokenizer *js = NULL;
    CHECK_OK(tok_load(json_path, &js));
    if (!js)
        return;
    CHECK(tok_vocab_size(js) == tok_vocab_size(model) && tok_eos_id(js) == tok_eos_id(model) &&
              tok_unk_id(js) == tok_unk_id(model) && tok_pad_id(js) == tok_pad_id(model),
          "%s: tokenizer.json vocab %d eos %d unk %d pad %d, model %d %d %d %d", name,
          tok_vocab_size(js), tok_eos_id(js), tok_unk_id(js), tok_pad_id(js), tok_vocab_size(model),
          tok_eos_id(model), tok_unk_id(model), tok_pad_id(model));
    int bad = 0;
    for (int i = 0; i < input->n; i++) {
        int32_t *a = NULL, *b = NULL;
        int na = 0, nb = 0;
        int sa = tok_encode_all(model, input->v[i], 1, &a, &na);
        int sb = tok_encode_all(js, input->v[i], 1, &b, &nb);
        if (sa < 0 || sb < 0 || na != nb || (na && memcmp(a, b, sizeof *a * (size_t)na))) {
            if (++bad <= 3) {
                fprintf(stderr, "%s: tokenizer.json differs on line %d: ", name, i + 1);
                print_escaped(input->v[i]);
            }
        }
        free(a);
        free(b);
    }
    CHECK(bad == 0, "%s: tokenizer.json gives other ids than the .model on %d lines", name, bad);
    tok_free(js);
}

/* spm_encode and reel tokenize over the lines, EOS/truncation, and the tokenizer.json version. */
static void check_model(const char *name, const char *model, bool json_too, const char *lines_path,
                        const lines *input, const char *reel_bin)
{
    char ref_path[1100], ours_path[1100], json_dir[1100], json[1200];
    snprintf(ref_path, sizeof ref_path, "%s.spm.txt", model);
    snprintf(ours_path, sizeof ours_path, "%s.reel.txt", model);
    CHECK(run("spm_encode --model='%s' --output_format=id < '%s' > '%s'", model, lines_path,
              ref_path) == 0,
          "%s: spm_encode failed", name);
    CHECK(run("'%s' tokenize --model '%s' --file '%s' --no-eos --max-len 0 > '%s'", reel_bin, model,
              lines_path, ours_path) == 0,
          "%s: reel tokenize failed", name);
    lines ref = read_lines(ref_path), ours = read_lines(ours_path);
    compare_with_reference(name, input, &ref, &ours);

    tokenizer *t = NULL;
    CHECK_OK(tok_load(model, &t));
    if (t) {
        check_eos_truncation(t, input, &ref);
        if (json_too) {
            snprintf(json_dir, sizeof json_dir, "%s_hf", model);
            mkdir(json_dir, 0755);
            snprintf(json, sizeof json, "%s/tokenizer.json", json_dir);
            write_tokenizer_json(t, json);
            check_json_matches(name, t, json_dir, input); /* loaded through its folder */
        }
        tok_free(t);
    }
    free_lines(&ref);
    free_lines(&ours);
}

static void test_trained(const model_case *mc, const char *corpus, const char *lines_path,
                         const lines *input, const char *reel_bin)
{
    char prefix[1024], model[1100];
    snprintf(prefix, sizeof prefix, "%s", check_path(mc->name));
    snprintf(model, sizeof model, "%s.model", prefix);
    if (run("spm_train --input='%s' --model_prefix='%s' --vocab_size=1000 --hard_vocab_limit=false "
            "--num_threads=2 --minloglevel=2 %s >/dev/null 2>&1",
            corpus, prefix, mc->options) != 0) {
        CHECK(false, "%s: spm_train failed", mc->name);
        return;
    }
    check_model(mc->name, model, mc->json, lines_path, input, reel_bin);
}

/* Hand-made models whose scores make segmentations tie exactly (integer sums) or nearly (sums of
 * -0.1, -0.2, -0.3 that differ only in float rounding), with a user-defined piece and an unused
 * piece of high score: the reference's tie-breaking and arithmetic decide these. */
static const spm_piece_spec k_tie_pieces[] = {{"<unk>", 0, 2},
                                              {"<s>", 0, 3},
                                              {"</s>", 0, 3},
                                              {"\xE2\x96\x81", -1, 1},
                                              {"a", -1, 1},
                                              {"b", -1, 1},
                                              {"c", -2, 1},
                                              {"ab", -2, 1},
                                              {"bc", -3, 1},
                                              {"abc", -4, 1},
                                              {"\xE2\x96\x81"
                                               "a",
                                               -2, 1},
                                              {"\xE2\x96\x81"
                                               "ab",
                                               -3, 1},
                                              {"ca", -3, 1},
                                              {"x", -0.1f, 1},
                                              {"y", -0.2f, 1},
                                              {"xy", -0.3f, 1},
                                              {"z", -0.7f, 1},
                                              {"yz", -0.9f, 1},
                                              {"xyz", -1.0f, 1},
                                              {"zx", -0.8f, 1},
                                              {"\xC3\xA9", -1.5f, 1},
                                              {"\xE2\x96\x81\xC3\xA9", -2.5f, 1},
                                              {"cc", 0, 4},
                                              {"ba", 5.0f, 5}};

static void write_tie_lines(const char *path)
{
    static const char *const parts[] = {"a", "b", "c",  "x",  "y",  "z",    "\xC3\xA9", "d",
                                        "q", " ", "  ", "cc", "ba", "\xFF", "ab",       "xy"};
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < N_LINES; i++) {
        int n = (int)(check_rand_u64() % 31);
        for (int k = 0; k < n; k++)
            fputs(PICK(parts), f);
        fputc('\n', f);
    }
    fclose(f);
}

static void test_handmade(const char *reel_bin)
{
    char lines_path[1024];
    snprintf(lines_path, sizeof lines_path, "%s", check_path("ties.txt"));
    write_tie_lines(lines_path);
    lines input = read_lines(lines_path);
    spm_model_spec specs[2] = {
        {.pieces = k_tie_pieces, .n_pieces = (int)(sizeof k_tie_pieces / sizeof k_tie_pieces[0])},
        {.pieces = k_tie_pieces,
         .n_pieces = (int)(sizeof k_tie_pieces / sizeof k_tie_pieces[0]),
         .byte_fallback = true,
         .treat_whitespace_as_suffix = true,
         .keep_extra_whitespaces = true},
    };
    const char *names[2] = {"ties", "ties_bytes_suffix"};
    for (int i = 0; i < 2; i++) {
        char model[1024];
        snprintf(model, sizeof model, "%s.model", check_path(names[i]));
        pbw w = spm_write_model(&specs[i]);
        CHECK(pbw_save(&w, model), "cannot write %s", model);
        free(w.p);
        check_model(names[i], model, false, lines_path, &input, reel_bin);
    }
    free_lines(&input);
}

int main(void)
{
    check_seed("test_tokenizer_spm");
    if (!have_program("spm_train") || !have_program("spm_encode")) {
        if (getenv("CI")) {
            CHECK(false, "spm_train/spm_encode not found: CI must install Debian's sentencepiece "
                         "package (setup.sh does)");
            return check_done();
        }
        return check_skip("spm_train/spm_encode not found (apt-get install sentencepiece)");
    }
    const char *src = getenv("REEL_SOURCE_DIR"), *reel_bin = getenv("REEL_BIN");
    if (!src || !reel_bin) {
        CHECK(false, "REEL_SOURCE_DIR and REEL_BIN are unset: run this test through ctest");
        return check_done();
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/assets/tokenizer/multilingual.txt", src);
    words ws = load_words(path);

    char corpus[1024], lines_path[1024];
    snprintf(corpus, sizeof corpus, "%s", check_path("corpus.txt"));
    snprintf(lines_path, sizeof lines_path, "%s", check_path("lines.txt"));
    write_corpus(corpus, &ws);
    write_lines(lines_path, &ws);
    lines input = read_lines(lines_path);
    CHECK(input.n == N_LINES, "wrote %d lines, read back %d", N_LINES, input.n);

    for (size_t i = 0; i < sizeof k_models / sizeof k_models[0]; i++)
        test_trained(&k_models[i], corpus, lines_path, &input, reel_bin);
    test_handmade(reel_bin);

    free_lines(&input);
    for (int i = 0; i < ws.n; i++)
        free(ws.w[i]);
    free(ws.w);
    return check_done();
}
