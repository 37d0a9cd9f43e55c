/* Segmentation of normalised text by a unigram model: the piece sequence with the highest total
 * score, found by SentencePiece's EncodeOptimized (unigram_model.cc), which the reference encoder
 * uses by default. It keeps, for every byte position, the best path ending there; positions are
 * visited by character, pieces starting at each one are enumerated shortest first, and ties keep
 * the path found first. A character no single-character piece covers gets an <unk> node scored
 * (lowest piece score - 10). User-defined pieces score length × highest score - 0.1, so they win.
 *
 * The arithmetic types are copied from the reference (piece scores float, the candidate in
 * double, the stored best in float) because they decide ties between paths of equal float score.
 *
 * Then, as SentencePieceProcessor does: with byte_fallback each <unk> is spelled as the
 * <0xXX> pieces of its UTF-8 bytes; without it, consecutive <unk> pieces merge into one. */
#include "tok_internal.h"

#include "error.h"

#include <limits.h>
#include <stdlib.h>

typedef struct best_node {
    int32_t id;
    float score;   /* of the best path ending here */
    int64_t start; /* where its last piece starts; -1: nothing ends here yet */
} best_node;

int tok_ids_push(tok_ids *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        if (ids->cap > INT_MAX / 2)
            return err_set(REEL_E_NOMEM, "tokenizer: more than %d ids", ids->n);
        int cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, sizeof *v * (size_t)cap);
        if (!v)
            return err_set(REEL_E_NOMEM, "tokenizer: %d ids", cap);
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return REEL_OK;
}

static void relax(best_node *node, int64_t start, int32_t id, double candidate)
{
    if (node->start == -1 || candidate > (double)node->score) {
        node->score = (float)candidate;
        node->start = start;
        node->id = id;
    }
}

static void viterbi(const tokenizer *t, const char *s, size_t n, best_node *best)
{
    const float unk_score = t->min_score - 10.0f;
    for (size_t i = 0; i <= n; i++)
        best[i] = (best_node){-1, 0.0f, -1};
    size_t start = 0;
    while (start < n) {
        const float here = best[start].score;
        size_t mblen = tok_utf8_len((uint8_t)s[start]);
        if (mblen > n - start)
            mblen = n - start;
        bool has_single = false;
        tok_cursor c = tok_trie_root(&t->vocab);
        int32_t id;
        for (size_t key = start; key < n && tok_trie_step(&t->vocab, &c, (uint8_t)s[key], &id);) {
            key++;
            if (id < 0 || t->pieces[id].type == TOK_UNUSED)
                continue;
            size_t length = key - start;
            double score = t->pieces[id].type == TOK_USER_DEFINED
                               ? (double)((float)length * t->max_score) - 0.1
                               : (double)t->pieces[id].score;
            relax(&best[key], (int64_t)start, id, score + (double)here);
            if (length == mblen)
                has_single = true;
        }
        if (!has_single)
            relax(&best[start + mblen], (int64_t)start, t->unk_id, (double)(unk_score + here));
        start += mblen;
    }
}

int tok_unigram_encode(const tokenizer *t, const char *norm, size_t len, tok_ids *out)
{
    if (!len)
        return REEL_OK;
    best_node *best = malloc(sizeof *best * (len + 1));
    size_t *ends = malloc(sizeof *ends * (len + 1));
    int st = REEL_OK;
    if (!best || !ends) {
        st = err_set(REEL_E_NOMEM, "tokenizer: lattice of %zu bytes", len);
        goto done;
    }
    viterbi(t, norm, len, best);

    /* Backtrack from the end, collecting piece ends, then emit in text order. */
    size_t n_pieces = 0;
    for (size_t end = len; end > 0; end = (size_t)best[end].start)
        ends[n_pieces++] = end;
    bool prev_unk = false;
    for (size_t k = n_pieces; k-- > 0;) {
        size_t end = ends[k];
        size_t begin = (size_t)best[end].start;
        int32_t id = best[end].id;
        bool unk = id == t->unk_id;
        if (unk && t->byte_fallback) {
            for (size_t i = begin; i < end && st >= 0; i++)
                st = tok_ids_push(out, t->byte_id[(uint8_t)norm[i]]);
        } else if (!(unk && prev_unk)) {
            st = tok_ids_push(out, id);
        }
        if (st < 0)
            goto done;
        prev_unk = unk;
    }
done:
    free(best);
    free(ends);
    return st;
}
