/* Reads a SentencePiece model file (spiece.model): a serialized ModelProto, whose fields are
 * given by sentencepiece_model.proto. Only what encoding needs is taken:
 *   ModelProto      1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec
 *   SentencePiece   1 piece (string), 2 score (float), 3 type (enum, default NORMAL)
 *   TrainerSpec     3 model_type (UNIGRAM = 1), 24 treat_whitespace_as_suffix, 35 byte_fallback,
 *                   47 eos_piece, 48 pad_piece
 *   NormalizerSpec  2 precompiled_charsmap, 3 add_dummy_prefix, 4 remove_extra_whitespaces,
 *                   5 escape_whitespaces (all three default true)
 * Other fields are skipped after their wire format is checked. */
#include "tok_internal.h"
#include "tok_proto.h"

#include "error.h"

#include <stdlib.h>
#include <string.h>

typedef struct spm_read {
    tok_spec spec;
    int cap;
    char eos[64], pad[64];
} spm_read;

static int read_piece(const pb_reader *outer, const pb_field *f, tok_piece_def *piece)
{
    pb_reader r = pb_reader_make(f->data, f->len, outer->file, outer->source, "ModelProto.pieces");
    *piece = (tok_piece_def){"", 0, 0.0f, TOK_NORMAL};
    pb_field g;
    int st;
    while ((st = pb_next(&r, &g)) > 0) {
        if (g.num == 1) {
            TRY(pb_expect(&r, &g, PB_LEN, "SentencePiece.piece"));
            piece->text = (const char *)g.data;
            piece->len = (uint32_t)g.len;
        } else if (g.num == 2) {
            TRY(pb_expect(&r, &g, PB_I32, "SentencePiece.score"));
            piece->score = pb_float(&g);
        } else if (g.num == 3) {
            TRY(pb_expect(&r, &g, PB_VARINT, "SentencePiece.type"));
            piece->type = g.value > 255 ? 255 : (int)g.value; /* tok_build rejects unknown types */
        }
    }
    return st;
}

static int read_name(const pb_reader *r, const pb_field *f, char *dst, size_t cap, const char *name)
{
    TRY(pb_expect(r, f, PB_LEN, name));
    if (f->len >= cap || memchr(f->data, 0, f->len))
        return err_set(REEL_E_FORMAT, "%s: %s is longer than %zu bytes or holds a NUL", r->source,
                       name, cap - 1);
    if (f->len) { /* an empty name means the default, as in SentencePiece */
        memcpy(dst, f->data, f->len);
        dst[f->len] = 0;
    }
    return REEL_OK;
}

static int read_trainer(const pb_reader *outer, const pb_field *f, spm_read *m)
{
    TRY(pb_expect(outer, f, PB_LEN, "ModelProto.trainer_spec"));
    pb_reader r = pb_reader_make(f->data, f->len, outer->file, outer->source, "TrainerSpec");
    pb_field g;
    int st;
    while ((st = pb_next(&r, &g)) > 0) {
        switch (g.num) {
        case 3:
            TRY(pb_expect(&r, &g, PB_VARINT, "TrainerSpec.model_type"));
            if (g.value != 1) {
                static const char *names[] = {"?", "UNIGRAM", "BPE", "WORD", "CHAR"};
                return err_set(
                    REEL_E_UNSUPPORTED,
                    "%s: model type %s (%llu) is not supported: reel reads unigram models",
                    outer->source, g.value < 5 ? names[g.value] : "unknown",
                    (unsigned long long)g.value);
            }
            break;
        case 24:
            TRY(pb_expect(&r, &g, PB_VARINT, "TrainerSpec.treat_whitespace_as_suffix"));
            m->spec.treat_whitespace_as_suffix = g.value != 0;
            break;
        case 35:
            TRY(pb_expect(&r, &g, PB_VARINT, "TrainerSpec.byte_fallback"));
            m->spec.byte_fallback = g.value != 0;
            break;
        case 47: TRY(read_name(&r, &g, m->eos, sizeof m->eos, "TrainerSpec.eos_piece")); break;
        case 48: TRY(read_name(&r, &g, m->pad, sizeof m->pad, "TrainerSpec.pad_piece")); break;
        default: break;
        }
    }
    return st;
}

static int read_normalizer(const pb_reader *outer, const pb_field *f, spm_read *m)
{
    TRY(pb_expect(outer, f, PB_LEN, "ModelProto.normalizer_spec"));
    pb_reader r = pb_reader_make(f->data, f->len, outer->file, outer->source, "NormalizerSpec");
    pb_field g;
    int st;
    while ((st = pb_next(&r, &g)) > 0) {
        switch (g.num) {
        case 2:
            TRY(pb_expect(&r, &g, PB_LEN, "NormalizerSpec.precompiled_charsmap"));
            m->spec.charsmap = g.data;
            m->spec.charsmap_size = g.len;
            break;
        case 3:
            TRY(pb_expect(&r, &g, PB_VARINT, "NormalizerSpec.add_dummy_prefix"));
            m->spec.add_dummy_prefix = g.value != 0;
            break;
        case 4:
            TRY(pb_expect(&r, &g, PB_VARINT, "NormalizerSpec.remove_extra_whitespaces"));
            m->spec.remove_extra_whitespaces = g.value != 0;
            break;
        case 5:
            TRY(pb_expect(&r, &g, PB_VARINT, "NormalizerSpec.escape_whitespaces"));
            m->spec.escape_whitespaces = g.value != 0;
            break;
        default: break;
        }
    }
    return st;
}

static int add_piece(const pb_reader *r, const pb_field *f, spm_read *m)
{
    TRY(pb_expect(r, f, PB_LEN, "ModelProto.pieces"));
    if (m->spec.n_pieces == m->cap) {
        int cap = m->cap ? m->cap * 2 : 1024;
        tok_piece_def *p = realloc(m->spec.pieces, sizeof *p * (size_t)cap);
        if (!p)
            return err_set(REEL_E_NOMEM, "%s: %d pieces", r->source, cap);
        m->spec.pieces = p;
        m->cap = cap;
    }
    TRY(read_piece(r, f, &m->spec.pieces[m->spec.n_pieces]));
    m->spec.n_pieces++;
    return REEL_OK;
}

int tok_spm_parse(const uint8_t *data, size_t size, const char *source, tokenizer **out)
{
    spm_read m = {0};
    m.spec.source = source;
    m.spec.add_dummy_prefix = m.spec.remove_extra_whitespaces = m.spec.escape_whitespaces = true;
    strcpy(m.eos, "</s>");
    strcpy(m.pad, "<pad>");
    m.spec.eos_piece = m.eos;
    m.spec.pad_piece = m.pad;

    pb_reader r = pb_reader_make(data, size, data, source, "ModelProto");
    pb_field f;
    int st;
    while ((st = pb_next(&r, &f)) > 0) {
        switch (f.num) {
        case 1: st = add_piece(&r, &f, &m); break;
        case 2: st = read_trainer(&r, &f, &m); break;
        case 3: st = read_normalizer(&r, &f, &m); break;
        default: break;
        }
        if (st < 0)
            break;
    }
    if (st >= 0)
        st = tok_build(&m.spec, out);
    free(m.spec.pieces);
    return st;
}
