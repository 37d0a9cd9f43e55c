/* Reads a Hugging Face tokenizer.json holding a Unigram model (what transformers' SentencePiece
 * converter writes for T5/umT5) and maps it onto the SentencePiece settings, so that encoding
 * runs the same code, with SentencePiece's semantics, for both file kinds:
 *   model           {"type": "Unigram", "vocab": [[piece, score], ...], "unk_id", "byte_fallback"}
 *   added_tokens    entries naming a vocab piece: "special": true -> control piece (</s>, <pad>),
 *                   false -> user-defined piece (kept whole); entries outside the vocab are ignored
 *   normalizer      Precompiled {"precompiled_charsmap": base64} -> the charsmap; Replace of
 *                   " {2,}", Strip and (pre-tokenizer) WhitespaceSplit -> remove_extra_whitespaces;
 *                   Sequence of these
 *   pre_tokenizer   Metaspace {"replacement": "▁", "prepend_scheme" or "add_prefix_space"} ->
 *                   escape_whitespaces, add_dummy_prefix
 * Anything else (BPE or WordPiece models, other normalizers) is refused as unsupported rather
 * than encoded differently from the Python tokenizer. */
#include "tok_internal.h"

#include "error.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

typedef struct json_read {
    tok_spec spec;
    uint8_t *charsmap;
} json_read;

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static int base64_decode(const char *s, uint8_t **out, size_t *size, const char *source)
{
    size_t len = strlen(s);
    while (len && s[len - 1] == '=')
        len--;
    uint8_t *buf = malloc(len * 3 / 4 + 1);
    if (!buf)
        return err_set(REEL_E_NOMEM, "%s: charsmap of %zu base64 characters", source, len);
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(s[i]);
        if (v < 0) {
            free(buf);
            return err_set(REEL_E_FORMAT,
                           "%s: precompiled_charsmap has a non-base64 character at %zu", source, i);
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (uint8_t)(acc >> bits);
        }
    }
    *out = buf;
    *size = n;
    return REEL_OK;
}

static const char *type_of(const cJSON *obj)
{
    const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "type"));
    return t ? t : "(no type)";
}

static int read_normalizer(const cJSON *n, json_read *m)
{
    const char *src = m->spec.source;
    if (!n || cJSON_IsNull(n))
        return REEL_OK;
    if (!cJSON_IsObject(n))
        return err_set(REEL_E_FORMAT, "%s: \"normalizer\" is not an object", src);
    const char *type = type_of(n);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers"), *it;
        if (!cJSON_IsArray(list))
            return err_set(REEL_E_FORMAT, "%s: Sequence normalizer without a \"normalizers\" array",
                           src);
        cJSON_ArrayForEach(it, list) TRY(read_normalizer(it, m));
        return REEL_OK;
    }
    if (!strcmp(type, "Precompiled")) {
        const cJSON *cm = cJSON_GetObjectItemCaseSensitive(n, "precompiled_charsmap");
        if (cJSON_IsNull(cm))
            return REEL_OK;
        if (!cJSON_IsString(cm))
            return err_set(REEL_E_FORMAT,
                           "%s: Precompiled normalizer without a precompiled_charsmap string", src);
        if (m->charsmap)
            return err_set(REEL_E_UNSUPPORTED, "%s: two Precompiled normalizers", src);
        TRY(base64_decode(cm->valuestring, &m->charsmap, &m->spec.charsmap_size, src));
        m->spec.charsmap = m->charsmap;
        return REEL_OK;
    }
    if (!strcmp(type, "Replace")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(n, "pattern");
        const char *re = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pat, "Regex"));
        const char *content = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(n, "content"));
        if (!re || strcmp(re, " {2,}") || !content ||
            (strcmp(content, " ") && strcmp(content, "\xE2\x96\x81")))
            return err_set(
                REEL_E_UNSUPPORTED,
                "%s: Replace normalizer other than \" {2,}\" -> one space is not supported", src);
        m->spec.remove_extra_whitespaces = true;
        return REEL_OK;
    }
    if (!strcmp(type, "Strip")) {
        m->spec.remove_extra_whitespaces = true;
        return REEL_OK;
    }
    return err_set(REEL_E_UNSUPPORTED, "%s: normalizer type \"%s\" is not supported", src, type);
}

static int read_pre_tokenizer(const cJSON *p, json_read *m)
{
    const char *src = m->spec.source;
    if (!p || cJSON_IsNull(p))
        return REEL_OK;
    if (!cJSON_IsObject(p))
        return err_set(REEL_E_FORMAT, "%s: \"pre_tokenizer\" is not an object", src);
    const char *type = type_of(p);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers"), *it;
        if (!cJSON_IsArray(list))
            return err_set(REEL_E_FORMAT,
                           "%s: Sequence pre_tokenizer without a \"pretokenizers\" array", src);
        cJSON_ArrayForEach(it, list) TRY(read_pre_tokenizer(it, m));
        return REEL_OK;
    }
    if (!strcmp(type, "WhitespaceSplit")) {
        m->spec.remove_extra_whitespaces = true;
        return REEL_OK;
    }
    if (!strcmp(type, "Metaspace")) {
        const char *rep = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "replacement"));
        if (!rep || strcmp(rep, "\xE2\x96\x81"))
            return err_set(REEL_E_UNSUPPORTED, "%s: Metaspace replacement other than U+2581", src);
        const cJSON *scheme = cJSON_GetObjectItemCaseSensitive(p, "prepend_scheme");
        const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(p, "add_prefix_space");
        if (cJSON_IsString(scheme))
            m->spec.add_dummy_prefix = strcmp(scheme->valuestring, "never") != 0;
        else
            m->spec.add_dummy_prefix = !cJSON_IsFalse(prefix);
        m->spec.escape_whitespaces = true;
        return REEL_OK;
    }
    return err_set(REEL_E_UNSUPPORTED, "%s: pre_tokenizer type \"%s\" is not supported", src, type);
}

static int read_vocab(const cJSON *model, json_read *m)
{
    const char *src = m->spec.source;
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab"), *it;
    if (!cJSON_IsArray(vocab))
        return err_set(REEL_E_FORMAT, "%s: model.vocab is missing or not an array", src);
    int n = cJSON_GetArraySize(vocab);
    m->spec.pieces = calloc((size_t)(n ? n : 1), sizeof *m->spec.pieces);
    if (!m->spec.pieces)
        return err_set(REEL_E_NOMEM, "%s: %d pieces", src, n);
    int i = 0;
    cJSON_ArrayForEach(it, vocab)
    {
        const cJSON *text = cJSON_GetArrayItem(it, 0), *score = cJSON_GetArrayItem(it, 1);
        if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2 || !cJSON_IsString(text) ||
            !cJSON_IsNumber(score))
            return err_set(REEL_E_FORMAT, "%s: model.vocab[%d] is not a [piece, score] pair", src,
                           i);
        m->spec.pieces[i] = (tok_piece_def){text->valuestring, (uint32_t)strlen(text->valuestring),
                                            (float)score->valuedouble, TOK_NORMAL};
        if (m->spec.byte_fallback &&
            tok_byte_of_piece(text->valuestring, m->spec.pieces[i].len) >= 0)
            m->spec.pieces[i].type = TOK_BYTE;
        i++;
    }
    m->spec.n_pieces = n;

    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_id");
    if (!cJSON_IsNumber(unk) || unk->valuedouble < 0 || unk->valuedouble >= n ||
        unk->valuedouble != (double)unk->valueint)
        return err_set(REEL_E_FORMAT,
                       "%s: model.unk_id is missing or not an index into the %d-piece vocab", src,
                       n);
    m->spec.pieces[unk->valueint].type = TOK_UNKNOWN;
    return REEL_OK;
}

/* Added tokens that name a vocab piece give it its SentencePiece type. */
static int read_added_tokens(const cJSON *added, json_read *m)
{
    const cJSON *it;
    if (!added || cJSON_IsNull(added))
        return REEL_OK;
    if (!cJSON_IsArray(added))
        return err_set(REEL_E_FORMAT, "%s: \"added_tokens\" is not an array", m->spec.source);
    cJSON_ArrayForEach(it, added)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const char *content = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "content"));
        if (!cJSON_IsNumber(id) || !content)
            return err_set(REEL_E_FORMAT, "%s: an added_tokens entry lacks \"id\" or \"content\"",
                           m->spec.source);
        int i = id->valueint;
        if (i < 0 || i >= m->spec.n_pieces || strcmp(m->spec.pieces[i].text, content) ||
            m->spec.pieces[i].type == TOK_UNKNOWN)
            continue;
        m->spec.pieces[i].type = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "special"))
                                     ? TOK_CONTROL
                                     : TOK_USER_DEFINED;
    }
    return REEL_OK;
}

static int read_model(const cJSON *root, json_read *m)
{
    const char *src = m->spec.source;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model))
        return err_set(REEL_E_FORMAT, "%s: no \"model\" object", src);
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(model, "type"));
    if (!type)
        return err_set(REEL_E_FORMAT, "%s: model.type is missing", src);
    if (strcmp(type, "Unigram"))
        return err_set(REEL_E_UNSUPPORTED,
                       "%s: model type \"%s\" is not supported: reel reads Unigram models", src,
                       type);
    const cJSON *bf = cJSON_GetObjectItemCaseSensitive(model, "byte_fallback");
    if (bf && !cJSON_IsBool(bf) && !cJSON_IsNull(bf))
        return err_set(REEL_E_FORMAT, "%s: model.byte_fallback is not a boolean", src);
    m->spec.byte_fallback = cJSON_IsTrue(bf);
    TRY(read_vocab(model, m));
    TRY(read_added_tokens(cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), m));
    TRY(read_normalizer(cJSON_GetObjectItemCaseSensitive(root, "normalizer"), m));
    return read_pre_tokenizer(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), m);
}

int tok_hfjson_parse(const char *text, size_t size, const char *source, tokenizer **out)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    if (!root)
        return err_set(REEL_E_FORMAT, "%s: not valid JSON (stops at byte %zu of %zu)", source,
                       end && end >= text ? (size_t)(end - text) : (size_t)0, size);
    json_read m = {0};
    m.spec.source = source;
    m.spec.eos_piece = "</s>";
    m.spec.pad_piece = "<pad>";
    int st = cJSON_IsObject(root) ? read_model(root, &m)
                                  : err_set(REEL_E_FORMAT, "%s: the JSON is not an object", source);
    if (st >= 0)
        st = tok_build(&m.spec, out);
    free(m.spec.pieces);
    free(m.charsmap);
    cJSON_Delete(root);
    return st;
}
