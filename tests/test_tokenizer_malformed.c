/* Malformed model files must fail to load with REEL_E_FORMAT (or REEL_E_UNSUPPORTED for valid
 * files of another kind) and a message naming the file and what is wrong; never crash or read out
 * of bounds (this test also runs under AddressSanitizer). Covers the protobuf reader (every
 * truncation of a valid file, bad varints, wrong wire types, groups, lengths past the end), the
 * model checks (no pieces, bad types, duplicates, <unk> and byte pieces), the precompiled charsmap
 * (sizes, replacement offsets), tokenizer.json (syntax, missing fields, BPE, unsupported
 * normalizers), paths, and random corruption of a valid file. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include "dit/error.h"
#include "dit/tokenizer.h"
#include "tokenizer/spm_writer.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const spm_piece_spec k_pieces[] = {{"<unk>", 0, 2}, {"</s>", 0, 3}, {"\xE2\x96\x81", -1, 1},
                                          {"a", -2, 1},    {"b", -2, 1},   {"ab", -3, 1}};
#define N_PIECES (int)(sizeof k_pieces / sizeof k_pieces[0])
static const spm_rule k_rules[] = {{"A", "a"}, {"B", "bbbb"}, {"\xEF\xBC\xA1", "a"}};

static int file_no;

static const char *write_file(const void *data, size_t n)
{
    static char path[1024];
    char name[64];
    snprintf(name, sizeof name, "m%04d.bin", file_no++);
    snprintf(path, sizeof path, "%s", check_path(name));
    FILE *f = fopen(path, "wb");
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
    return path;
}

/* Loads data from a file and checks the status and that the message names the file and holds
 * `needle`. */
static void expect_error(const char *what, const void *data, size_t n, int want, const char *needle)
{
    const char *path = write_file(data, n);
    tokenizer *t = (tokenizer *)&file_no; /* must be reset to NULL on failure */
    err_clear();
    int st = tok_load(path, &t);
    CHECK(st == want, "%s: status %d, expected %d (%s)", what, st, want, err_msg());
    if (st == REEL_OK) {
        tok_free(t);
        return;
    }
    CHECK(t == NULL, "%s: *out not cleared on failure", what);
    CHECK(strstr(err_msg(), path) != NULL, "%s: message does not name the file: %s", what,
          err_msg());
    CHECK(!needle || strstr(err_msg(), needle), "%s: message lacks '%s': %s", what, needle,
          err_msg());
    printf("  %-28s %s\n", what, strstr(err_msg(), path) ? err_msg() + strlen(path) : err_msg());
}

static pbw model_bytes(const spm_piece_spec *pieces, int n, bool with_charsmap, bool byte_fallback)
{
    size_t cm_size = 0;
    uint8_t *cm = with_charsmap ? spm_build_charsmap(k_rules, 3, &cm_size) : NULL;
    spm_model_spec spec = {.pieces = pieces,
                           .n_pieces = n,
                           .byte_fallback = byte_fallback,
                           .charsmap = cm,
                           .charsmap_size = cm_size};
    pbw w = spm_write_model(&spec);
    free(cm);
    return w;
}

/* ---- protobuf ------------------------------------------------------------------------------ */

static void test_truncations(void)
{
    pbw w = model_bytes(k_pieces, N_PIECES, true, false);
    int format = 0, ok = 0, other = 0;
    for (size_t n = 1; n < w.n; n++) {
        const char *path = write_file(w.p, n);
        tokenizer *t = NULL;
        int st = tok_load(path, &t);
        if (st == REEL_OK) {
            ok++;
            tok_free(t);
        } else if (st == REEL_E_FORMAT && strstr(err_msg(), path)) {
            format++;
        } else {
            if (++other <= 3)
                fprintf(stderr, "truncated to %zu bytes: %d %s\n", n, st, err_msg());
        }
    }
    CHECK(other == 0, "%d truncations gave something else than a load or a named format error",
          other);
    CHECK(format > (int)w.n / 2, "only %d of %zu truncations were rejected", format, w.n);
    printf("  truncations: %zu lengths, %d rejected, %d loadable (cut between fields)\n", w.n - 1,
           format, ok);
    free(w.p);
}

static void test_wire_format(void)
{
    const uint8_t bad_varint[] = {0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                  0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    expect_error("varint over 64 bits", bad_varint, sizeof bad_varint, REEL_E_FORMAT, "varint");
    const uint8_t cut_varint[] = {0x0A, 0x85};
    expect_error("truncated varint", cut_varint, sizeof cut_varint, REEL_E_FORMAT,
                 "truncated varint");
    const uint8_t pieces_as_varint[] = {0x08, 0x01};
    expect_error("pieces as varint", pieces_as_varint, 2, REEL_E_FORMAT, "ModelProto.pieces");
    const uint8_t group[] = {0x0B, 0x0C};
    expect_error("group wire type", group, 2, REEL_E_FORMAT, "group");
    const uint8_t long_len[] = {0x0A, 0x7F, 'a'};
    expect_error("length past the end", long_len, 3, REEL_E_FORMAT, "claims 127 bytes");
    const uint8_t field0[] = {0x02, 0x00};
    expect_error("field number 0", field0, 2, REEL_E_FORMAT, "field number 0");
    const uint8_t wire7[] = {0x0F};
    expect_error("wire type 7", wire7, 1, REEL_E_FORMAT, "wire type 7");
    /* A piece whose score is a varint instead of a float. */
    const uint8_t score_varint[] = {0x0A, 0x07, 0x0A, 0x01, 'a', 0x10, 0x01, 0x18, 0x02};
    expect_error("score as varint", score_varint, sizeof score_varint, REEL_E_FORMAT,
                 "SentencePiece.score");
    const uint8_t trainer_as_fixed[] = {0x15, 0, 0, 0, 0};
    expect_error("trainer_spec as 32-bit", trainer_as_fixed, 5, REEL_E_FORMAT,
                 "ModelProto.trainer_spec");
}

static void expect_model_error(const char *what, const spm_piece_spec *pieces, int n,
                               bool byte_fallback, int want, const char *needle)
{
    pbw w = model_bytes(pieces, n, false, byte_fallback);
    expect_error(what, w.p, w.n, want, needle);
    free(w.p);
}

static void test_model_checks(void)
{
    expect_model_error("no pieces", k_pieces, 0, false, REEL_E_FORMAT, "no pieces");
    const spm_piece_spec bad_type[] = {{"<unk>", 0, 2}, {"a", 0, 9}};
    expect_model_error("piece type 9", bad_type, 2, false, REEL_E_FORMAT, "unknown type 9");
    const spm_piece_spec twice[] = {{"<unk>", 0, 2}, {"a", -1, 1}, {"b", -1, 1}, {"a", -2, 1}};
    expect_model_error("duplicate piece", twice, 4, false, REEL_E_FORMAT, "defined twice");
    const spm_piece_spec two_unk[] = {{"<unk>", 0, 2}, {"<unk2>", 0, 2}, {"a", -1, 1}};
    expect_model_error("two <unk>", two_unk, 3, false, REEL_E_FORMAT, "both <unk>");
    expect_model_error("no <unk>", k_pieces + 1, N_PIECES - 1, false, REEL_E_FORMAT,
                       "unknown type (<unk>)");
    const spm_piece_spec stray_byte[] = {{"<unk>", 0, 2}, {"<0x41>", 0, 6}, {"a", -1, 1}};
    expect_model_error("byte piece, no fallback", stray_byte, 3, false, REEL_E_FORMAT,
                       "byte_fallback");
    const spm_piece_spec bad_byte[] = {{"<unk>", 0, 2}, {"<0x4G>", 0, 6}, {"a", -1, 1}};
    expect_model_error("byte piece <0x4G>", bad_byte, 3, true, REEL_E_FORMAT, "not <0xXX>");
    const spm_piece_spec empty[] = {{"<unk>", 0, 2}, {"", -1, 1}};
    expect_model_error("empty piece", empty, 2, false, REEL_E_FORMAT, "is empty");

    /* byte_fallback without the 256 byte pieces: written by hand since the writer adds them. */
    pbw w = {0};
    for (int i = 0; i < N_PIECES; i++)
        spm_write_piece(&w, k_pieces[i].text, k_pieces[i].score, k_pieces[i].type);
    for (int b = 0; b < 256; b++) {
        char text[8];
        snprintf(text, sizeof text, "<0x%02X>", b);
        if (b != 0x41)
            spm_write_piece(&w, text, 0, 6);
    }
    pbw trainer = {0};
    pbw_varint_field(&trainer, 35, 1);
    pbw_len_field(&w, 2, trainer.p, trainer.n);
    expect_error("byte piece missing", w.p, w.n, REEL_E_FORMAT, "<0x41> is missing");
    free(w.p);
    free(trainer.p);

    spm_model_spec bpe = {.pieces = k_pieces, .n_pieces = N_PIECES, .model_type = 2};
    w = spm_write_model(&bpe);
    expect_error("BPE model", w.p, w.n, REEL_E_UNSUPPORTED, "BPE");
    free(w.p);
}

/* ---- precompiled charsmap ------------------------------------------------------------------ */

static void expect_charsmap_error(const char *what, const uint8_t *blob, size_t size,
                                  const char *needle)
{
    spm_model_spec spec = {
        .pieces = k_pieces, .n_pieces = N_PIECES, .charsmap = blob, .charsmap_size = size};
    pbw w = spm_write_model(&spec);
    expect_error(what, w.p, w.n, REEL_E_FORMAT, needle);
    free(w.p);
}

static void test_charsmap(void)
{
    size_t size;
    uint8_t *blob = spm_build_charsmap(k_rules, 3, &size);
    size_t trie = blob[0] | (size_t)blob[1] << 8 | (size_t)blob[2] << 16;
    expect_charsmap_error("charsmap of 3 bytes", blob, 3, "too short");
    uint8_t *copy = malloc(size);
    memcpy(copy, blob, size);
    copy[2] = 0x7F; /* trie size far past the blob */
    expect_charsmap_error("trie size past the blob", copy, size, "does not fit");
    memcpy(copy, blob, size);
    copy[0] |= 2; /* not a whole number of units */
    expect_charsmap_error("trie size not 4k", copy, size, "does not fit");
    /* Replacements "a\0bbbb\0a\0": cut to "a\0", the rule for B points past the blob. */
    expect_charsmap_error("replacement past the end", blob, 4 + trie + 2, "points outside");
    expect_charsmap_error("replacement without NUL", blob, size - 1, "not NUL-terminated");
    free(copy);
    free(blob);
}

/* Random byte changes to a valid model: anything may load or be refused, nothing may crash, and
 * what loads must encode. */
static void test_corruption(void)
{
    pbw w = model_bytes(k_pieces, N_PIECES, true, false);
    uint8_t *buf = malloc(w.n + 8);
    int loaded = 0, refused = 0, wrong = 0;
    for (int iter = 0; iter < 1500; iter++) {
        memcpy(buf, w.p, w.n);
        size_t n = w.n;
        int edits = 1 + (int)(check_rand_u64() % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = check_rand_u64() % n;
            switch (check_rand_u64() % 3) {
            case 0: buf[at] = (uint8_t)check_rand_u64(); break;
            case 1: buf[at] ^= (uint8_t)(1u << (check_rand_u64() % 8)); break;
            default: memmove(buf + at, buf + at + 1, n - at - 1); n--;
            }
        }
        const char *path = write_file(buf, n);
        file_no--; /* reuse one file name */
        tokenizer *t = NULL;
        int st = tok_load(path, &t);
        if (st == REEL_OK) {
            loaded++;
            int32_t *ids = NULL;
            int n_ids;
            if (tok_encode_all(t, "  AB ab\xEF\xBC\xA1 \xFF\xE6\x97\xA5 ", 0, &ids, &n_ids) < 0)
                wrong++;
            free(ids);
            tok_free(t);
        } else if ((st == REEL_E_FORMAT || st == REEL_E_UNSUPPORTED) && strstr(err_msg(), path)) {
            refused++;
        } else {
            wrong++;
        }
    }
    CHECK(wrong == 0, "%d corrupted files failed otherwise than with a named format error", wrong);
    printf("  corruption: 1500 files, %d loaded and encoded, %d refused\n", loaded, refused);
    free(buf);
    free(w.p);
}

/* ---- tokenizer.json ------------------------------------------------------------------------ */

#define VOCAB "[[\"<unk>\", 0], [\"</s>\", 0], [\"a\", -1]]"

static void expect_json_error(const char *what, const char *json, int want, const char *needle)
{
    expect_error(what, json, strlen(json), want, needle);
}

static void test_json(void)
{
    expect_json_error("not JSON", "{\"model\": ", REEL_E_FORMAT, "not valid JSON");
    expect_json_error("no model", "{}", REEL_E_FORMAT, "no \"model\"");
    expect_json_error("model.type missing", "{\"model\": {\"vocab\": " VOCAB "}}", REEL_E_FORMAT,
                      "model.type");
    expect_json_error("BPE", "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}",
                      REEL_E_UNSUPPORTED, "\"BPE\"");
    expect_json_error("vocab missing", "{\"model\": {\"type\": \"Unigram\", \"unk_id\": 0}}",
                      REEL_E_FORMAT, "model.vocab");
    expect_json_error("vocab entry",
                      "{\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": [[1, 2]]}}",
                      REEL_E_FORMAT, "vocab[0]");
    expect_json_error("unk_id missing",
                      "{\"model\": {\"type\": \"Unigram\", \"vocab\": " VOCAB "}}", REEL_E_FORMAT,
                      "unk_id");
    expect_json_error("unk_id out of range",
                      "{\"model\": {\"type\": \"Unigram\", \"unk_id\": 3, \"vocab\": " VOCAB "}}",
                      REEL_E_FORMAT, "unk_id");
    expect_json_error("empty vocab",
                      "{\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": []}}",
                      REEL_E_FORMAT, "unk_id");
    expect_json_error(
        "byte_fallback not bool",
        "{\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"byte_fallback\": 1, \"vocab\": " VOCAB
        "}}",
        REEL_E_FORMAT, "byte_fallback");
    expect_json_error(
        "bad base64",
        "{\"normalizer\": {\"type\": \"Precompiled\", \"precompiled_charsmap\": \"AA@A\"},"
        " \"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": " VOCAB "}}",
        REEL_E_FORMAT, "base64");
    expect_json_error(
        "short charsmap",
        "{\"normalizer\": {\"type\": \"Precompiled\", \"precompiled_charsmap\": \"AAAA\"},"
        " \"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": " VOCAB "}}",
        REEL_E_FORMAT, "charsmap");
    expect_json_error("NFKC normalizer",
                      "{\"normalizer\": {\"type\": \"NFKC\"},"
                      " \"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": " VOCAB "}}",
                      REEL_E_UNSUPPORTED, "\"NFKC\"");
    expect_json_error("Metaspace '_'",
                      "{\"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"_\"},"
                      " \"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": " VOCAB "}}",
                      REEL_E_UNSUPPORTED, "Metaspace");
    expect_json_error("duplicate piece",
                      "{\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": [[\"<unk>\", "
                      "0], [\"a\", -1], [\"a\", -2]]}}",
                      REEL_E_FORMAT, "defined twice");
}

/* ---- paths --------------------------------------------------------------------------------- */

static void test_paths(void)
{
    tokenizer *t = NULL;
    char path[1024];
    snprintf(path, sizeof path, "%s/does-not-exist.model", check_tmpdir());
    CHECK(tok_load(path, &t) == REEL_E_NOT_FOUND && strstr(err_msg(), path), "missing file: %s",
          err_msg());
    snprintf(path, sizeof path, "%s", check_path("empty_dir"));
    mkdir(path, 0755);
    CHECK(tok_load(path, &t) == REEL_E_NOT_FOUND && strstr(err_msg(), "neither"),
          "empty folder: %s", err_msg());
    expect_error("empty file", "", 0, REEL_E_FORMAT, "empty");
    CHECK(tok_load(NULL, &t) == REEL_E_INVALID, "NULL path accepted");
}

int main(void)
{
    check_seed("test_tokenizer_malformed");
    pbw ok = model_bytes(k_pieces, N_PIECES, true, false);
    expect_error("valid model", ok.p, ok.n, REEL_OK, NULL);
    free(ok.p);
    test_truncations();
    test_wire_format();
    test_model_checks();
    test_charsmap();
    test_corruption();
    test_json();
    test_paths();
    return check_done();
}
