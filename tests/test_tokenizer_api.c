/* The tokenizer API on a hand-made model whose segmentations can be worked out by hand (scores
 * below), without the reference tools: normalisation rules, whitespace handling, Viterbi,
 * unknown merging, user-defined pieces, malformed UTF-8, EOS and truncation, special ids, loading
 * from a folder and from tokenizer.json.
 *   ids: 0 <pad> 1 </s> 2 <unk> | 3 ▁ -2 | 4 ▁a -1 | 5 a -1.5 | 6 b -1.5 | 7 ab -2 | 8 c -3 |
 *        9 <sep> user-defined (scores 5 x -1 - 0.1 = -5.1) ; <unk> scores -3 - 10 = -13
 *   rules: A -> a, AB -> c, U+FF22 (fullwidth B) -> b, x -> (nothing), tab -> space */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include "dit/error.h"
#include "dit/tokenizer.h"
#include "tokenizer/spm_writer.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const spm_piece_spec k_pieces[] = {{"<pad>", 0, 3},
                                          {"</s>", 0, 3},
                                          {"<unk>", 0, 2},
                                          {"\xE2\x96\x81", -2, 1},
                                          {"\xE2\x96\x81"
                                           "a",
                                           -1, 1},
                                          {"a", -1.5f, 1},
                                          {"b", -1.5f, 1},
                                          {"ab", -2, 1},
                                          {"c", -3, 1},
                                          {"<sep>", 0, 4}};
static const spm_rule k_rules[] = {
    {"A", "a"}, {"AB", "c"}, {"\xEF\xBC\xA2", "b"}, {"x", ""}, {"\t", " "}};

/* Encodes without truncation and compares with the expected ids. */
static void expect_ids(const tokenizer *t, const char *text, int add_eos, const int32_t *want,
                       int n_want)
{
    int32_t *ids = NULL;
    int n = -1;
    CHECK_OK(tok_encode_all(t, text, add_eos, &ids, &n));
    bool same = n == n_want && (n == 0 || !memcmp(ids, want, sizeof *ids * (size_t)n));
    CHECK(same, "'%s': %d ids (first %d), expected %d (first %d)", text, n, n > 0 ? ids[0] : -1,
          n_want, n_want > 0 ? want[0] : -1);
    free(ids);
}

#define EXPECT(t, text, eos, ...)                                                                  \
    do {                                                                                           \
        const int32_t want_[] = {__VA_ARGS__};                                                     \
        expect_ids(t, text, eos, want_, (int)(sizeof want_ / sizeof want_[0]));                    \
    } while (0)

static void test_encoding(const tokenizer *t)
{
    EXPECT(t, "ab ab", 0, 4, 6, 4, 6); /* ▁a b beats ▁ ab: -2.5 against -4 */
    EXPECT(t, "  A\tB  ", 0, 4, 3, 2); /* spaces trimmed, A -> a, tab -> ▁, B unknown */
    EXPECT(t, "AB", 0, 3, 8);          /* the longer rule AB wins over A */
    EXPECT(t,
           "\xEF\xBC\xA2"
           "a<sep>\xE6\x97\xA5\xE6\x9C\xAC"
           "a",
           0, 3, 6, 5, 9, 2, 5);
    EXPECT(t,
           "a\xFF"
           "b",
           0, 4, 2, 6); /* the bad byte is one U+FFFD, an unknown */
    EXPECT(t,
           "a\xE6\x97\xA5"
           "b\xE6\x9C\xAC",
           0, 4, 2, 6, 2);
    EXPECT(t, "x", 1, 1); /* deleted by its rule: nothing but EOS */
    int32_t *ids = NULL;
    int n = -1;
    CHECK_OK(tok_encode_all(t, "", 0, &ids, &n));
    CHECK(n == 0, "empty text gave %d ids", n);
    free(ids);
}

static void expect_truncated(const tokenizer *t, int add_eos, int max_len, const int32_t *want,
                             int n_want)
{
    int32_t ids[8];
    for (int i = 0; i < 8; i++)
        ids[i] = -7;
    int n = -1;
    CHECK_OK(tok_encode(t, "ab ab", add_eos, max_len, ids, &n));
    CHECK(n == n_want && !memcmp(ids, want, sizeof *ids * (size_t)n_want),
          "eos %d max_len %d: %d ids, expected %d", add_eos, max_len, n, n_want);
    CHECK(n_want >= 8 || ids[n_want] == -7, "eos %d max_len %d wrote past its ids", add_eos,
          max_len);
}

static void test_truncation(const tokenizer *t)
{
    expect_truncated(t, 1, 8, (const int32_t[]){4, 6, 4, 6, 1}, 5);
    expect_truncated(t, 1, 5, (const int32_t[]){4, 6, 4, 6, 1}, 5);
    expect_truncated(t, 1, 4, (const int32_t[]){4, 6, 4, 1}, 4);
    expect_truncated(t, 1, 1, (const int32_t[]){1}, 1);
    expect_truncated(t, 0, 3, (const int32_t[]){4, 6, 4}, 3);
    int32_t ids[4];
    int n;
    CHECK(tok_encode(t, "ab", 1, 0, ids, &n) == REEL_E_INVALID, "max_len 0 accepted");
}

static void test_accessors(const tokenizer *t)
{
    CHECK(tok_vocab_size(t) == 10, "vocab size %d", tok_vocab_size(t));
    CHECK(tok_eos_id(t) == 1 && tok_pad_id(t) == 0 && tok_unk_id(t) == 2, "eos %d pad %d unk %d",
          tok_eos_id(t), tok_pad_id(t), tok_unk_id(t));
    CHECK(tok_piece(t, 4) && !strcmp(tok_piece(t, 4), "\xE2\x96\x81"
                                                      "a"),
          "piece 4 is '%s'", tok_piece(t, 4) ? tok_piece(t, 4) : "(null)");
    CHECK(!tok_piece(t, -1) && !tok_piece(t, 10), "pieces out of range are not NULL");
}

/* The same vocabulary as tokenizer.json, with Wan/T5-style whitespace handling and no rules. */
static const char k_json[] =
    "{\"added_tokens\": [{\"id\": 0, \"content\": \"<pad>\", \"special\": true},"
    " {\"id\": 1, \"content\": \"</s>\", \"special\": true},"
    " {\"id\": 2, \"content\": \"<unk>\", \"special\": true},"
    " {\"id\": 9, \"content\": \"<sep>\", \"special\": false}],"
    " \"normalizer\": null,"
    " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": "
    "\"WhitespaceSplit\"},"
    " {\"type\": \"Metaspace\", \"replacement\": \"\xE2\x96\x81\", \"add_prefix_space\": true}]},"
    " \"model\": {\"type\": \"Unigram\", \"unk_id\": 2, \"vocab\": [[\"<pad>\", 0], [\"</s>\", 0],"
    " [\"<unk>\", 0], [\"\xE2\x96\x81\", -2], [\"\xE2\x96\x81"
    "a\", -1], [\"a\", -1.5], [\"b\", -1.5],"
    " [\"ab\", -2], [\"c\", -3], [\"<sep>\", 0]]}}";

static void test_json(const char *dir)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "wb");
    fputs(k_json, f);
    fclose(f);
    tokenizer *t = NULL;
    CHECK_OK(tok_load(dir, &t)); /* the folder holds only tokenizer.json */
    if (!t)
        return;
    test_accessors(t);
    EXPECT(t, "ab ab", 1, 4, 6, 4, 6, 1);
    EXPECT(t, "  ab   a ", 0, 4, 6, 4);
    EXPECT(t, "A", 0, 3, 2); /* no rules: A is unknown */
    EXPECT(t, "<sep>", 0, 3, 9);
    tok_free(t);
}

int main(void)
{
    check_seed("test_tokenizer_api");
    size_t cm_size;
    uint8_t *cm = spm_build_charsmap(k_rules, (int)(sizeof k_rules / sizeof k_rules[0]), &cm_size);
    spm_model_spec spec = {.pieces = k_pieces,
                           .n_pieces = (int)(sizeof k_pieces / sizeof k_pieces[0]),
                           .charsmap = cm,
                           .charsmap_size = cm_size};
    pbw w = spm_write_model(&spec);
    free(cm);

    char model_dir[1024], model[1100], json_dir[1024];
    snprintf(model_dir, sizeof model_dir, "%s", check_path("umt5"));
    snprintf(json_dir, sizeof json_dir, "%s", check_path("hf"));
    mkdir(model_dir, 0755);
    mkdir(json_dir, 0755);
    snprintf(model, sizeof model, "%s/spiece.model", model_dir);
    CHECK(pbw_save(&w, model), "cannot write %s", model);
    free(w.p);

    tokenizer *t = NULL;
    CHECK_OK(tok_load(model, &t));
    if (t) {
        test_accessors(t);
        test_encoding(t);
        test_truncation(t);
        tok_free(t);
    }
    t = NULL;
    CHECK_OK(tok_load(model_dir, &t)); /* a folder holding spiece.model, as google/umt5-xxl */
    if (t)
        EXPECT(t, "ab ab", 1, 4, 6, 4, 6, 1);
    tok_free(t);
    test_json(json_dir);
    return check_done();
}
