/* Builds a tokenizer from what a loader read, with the checks SentencePiece makes when it loads a
 * model (ModelInterface::InitializePieces): pieces non-empty and NUL-free, no piece defined twice,
 * exactly one <unk>, byte pieces only with byte_fallback and then all 256 of them. */
#include "tok_internal.h"

#include "error.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

/* SentencePiece refuses pieces of this many bytes or more (kMaxPieceSize). */
#define TOK_MAX_PIECE_BYTES 8000

int tok_byte_of_piece(const char *text, uint32_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    if (len != 6 || memcmp(text, "<0x", 3) || text[5] != '>')
        return -1;
    const char *hi = memchr(hex, text[3], 16), *lo = memchr(hex, text[4], 16);
    if (!hi || !lo)
        return -1;
    return (int)((hi - hex) * 16 + (lo - hex));
}

static int check_piece(const tok_spec *spec, int i)
{
    const tok_piece_def *p = &spec->pieces[i];
    if (p->type < TOK_NORMAL || p->type > TOK_BYTE)
        return err_set(REEL_E_FORMAT, "%s: piece %d has unknown type %d", spec->source, i, p->type);
    if (p->len == 0)
        return err_set(REEL_E_FORMAT, "%s: piece %d is empty", spec->source, i);
    if (p->len >= TOK_MAX_PIECE_BYTES)
        return err_set(REEL_E_FORMAT, "%s: piece %d is %u bytes long (limit %d)", spec->source, i,
                       p->len, TOK_MAX_PIECE_BYTES - 1);
    if (memchr(p->text, 0, p->len))
        return err_set(REEL_E_FORMAT, "%s: piece %d holds a NUL byte", spec->source, i);
    return REEL_OK;
}

/* Duplicates are adjacent once sorted. */
static int check_unique(const tokenizer *t, const tok_trie *tr)
{
    for (int i = 1; i < tr->n; i++)
        if (tr->e[i].len == tr->e[i - 1].len &&
            !memcmp(tr->e[i].text, tr->e[i - 1].text, tr->e[i].len))
            return err_set(REEL_E_FORMAT, "%s: piece '%s' is defined twice (ids %d and %d)",
                           t->source, tr->e[i].text, tr->e[i - 1].id, tr->e[i].id);
    return REEL_OK;
}

/* PieceToId for a reserved piece: exact text among CONTROL pieces, else -1. */
static int find_control(const tokenizer *t, const char *text)
{
    size_t len = strlen(text);
    for (int i = 0; i < t->n_pieces; i++)
        if (t->pieces[i].type == TOK_CONTROL && t->pieces[i].len == len &&
            !memcmp(t->pieces[i].text, text, len))
            return i;
    return -1;
}

static int copy_pieces(tokenizer *t, const tok_spec *spec)
{
    size_t pool = 0;
    for (int i = 0; i < spec->n_pieces; i++) {
        TRY(check_piece(spec, i));
        pool += spec->pieces[i].len + 1;
    }
    t->pieces = malloc(sizeof *t->pieces * (size_t)spec->n_pieces);
    t->pool = malloc(pool);
    if (!t->pieces || !t->pool)
        return err_set(REEL_E_NOMEM, "%s: %d pieces", spec->source, spec->n_pieces);
    char *at = t->pool;
    for (int i = 0; i < spec->n_pieces; i++) {
        t->pieces[i] = spec->pieces[i];
        memcpy(at, spec->pieces[i].text, spec->pieces[i].len);
        at[spec->pieces[i].len] = 0;
        t->pieces[i].text = at;
        at += spec->pieces[i].len + 1;
    }
    t->n_pieces = spec->n_pieces;
    return REEL_OK;
}

static int index_pieces(tokenizer *t)
{
    t->unk_id = -1;
    t->min_score = FLT_MAX;
    t->max_score =
        FLT_MIN; /* SentencePiece's starting values, kept for models without NORMAL pieces */
    bool byte_seen[256] = {false};
    for (int i = 0; i < t->n_pieces; i++) {
        const tok_piece_def *p = &t->pieces[i];
        if (p->type == TOK_NORMAL) {
            if (p->score < t->min_score)
                t->min_score = p->score;
            if (p->score > t->max_score)
                t->max_score = p->score;
        } else if (p->type == TOK_UNKNOWN) {
            if (t->unk_id >= 0)
                return err_set(REEL_E_FORMAT, "%s: pieces %d and %d are both <unk>", t->source,
                               t->unk_id, i);
            t->unk_id = i;
        } else if (p->type == TOK_BYTE) {
            int b = tok_byte_of_piece(p->text, p->len);
            if (!t->byte_fallback)
                return err_set(REEL_E_FORMAT,
                               "%s: byte piece '%s' (id %d) in a model without byte_fallback",
                               t->source, p->text, i);
            if (b < 0)
                return err_set(REEL_E_FORMAT, "%s: byte piece %d is '%s', not <0xXX>", t->source, i,
                               p->text);
            t->byte_id[b] = i;
            byte_seen[b] = true;
        }
    }
    if (t->unk_id < 0)
        return err_set(REEL_E_FORMAT, "%s: no piece has the unknown type (<unk>)", t->source);
    if (t->byte_fallback)
        for (int b = 0; b < 256; b++)
            if (!byte_seen[b])
                return err_set(REEL_E_FORMAT,
                               "%s: byte_fallback is set but piece <0x%02X> is missing", t->source,
                               b);

    TRY(tok_trie_build(&t->vocab, t->pieces, t->n_pieces,
                       1u << TOK_NORMAL | 1u << TOK_USER_DEFINED | 1u << TOK_UNUSED));
    TRY(check_unique(t, &t->vocab));
    tok_trie reserved;
    TRY(tok_trie_build(&reserved, t->pieces, t->n_pieces,
                       1u << TOK_UNKNOWN | 1u << TOK_CONTROL | 1u << TOK_BYTE));
    int st = check_unique(t, &reserved);
    tok_trie_free(&reserved);
    TRY(st);
    return tok_trie_build(&t->user, t->pieces, t->n_pieces, 1u << TOK_USER_DEFINED);
}

int tok_build(const tok_spec *spec, tokenizer **out)
{
    *out = NULL;
    if (spec->n_pieces <= 0)
        return err_set(REEL_E_FORMAT, "%s: the model has no pieces", spec->source);
    tokenizer *t = calloc(1, sizeof *t);
    if (!t || !(t->source = malloc(strlen(spec->source) + 1))) {
        free(t);
        return err_set(REEL_E_NOMEM, "%s: tokenizer", spec->source);
    }
    strcpy(t->source, spec->source);
    t->add_dummy_prefix = spec->add_dummy_prefix;
    t->remove_extra_whitespaces = spec->remove_extra_whitespaces;
    t->escape_whitespaces = spec->escape_whitespaces;
    t->treat_whitespace_as_suffix = spec->treat_whitespace_as_suffix;
    t->byte_fallback = spec->byte_fallback;

    int st = copy_pieces(t, spec);
    if (st >= 0)
        st = index_pieces(t);
    if (st >= 0)
        st = tok_charsmap_init(&t->cmap, spec->charsmap, spec->charsmap_size, spec->source);
    if (st < 0) {
        tok_free(t);
        return st;
    }
    t->eos_id = find_control(t, spec->eos_piece);
    t->pad_id = find_control(t, spec->pad_piece);
    *out = t;
    return REEL_OK;
}

void tok_free(tokenizer *t)
{
    if (!t)
        return;
    tok_trie_free(&t->vocab);
    tok_trie_free(&t->user);
    tok_charsmap_free(&t->cmap);
    free(t->pieces);
    free(t->pool);
    free(t->source);
    free(t);
}

int tok_vocab_size(const tokenizer *t) { return t->n_pieces; }

const char *tok_piece(const tokenizer *t, int id)
{
    return id >= 0 && id < t->n_pieces ? t->pieces[id].text : NULL;
}

int tok_eos_id(const tokenizer *t) { return t->eos_id; }
int tok_pad_id(const tokenizer *t) { return t->pad_id; }
int tok_unk_id(const tokenizer *t) { return t->unk_id; }
