/* Prefix search over pieces sorted by their bytes. Sorting makes every trie node a contiguous
 * range of the array: the children of a node are the sub-ranges that agree on the next byte, so
 * one step is two binary searches and no node structure is stored. Walking the text byte by byte
 * from a start position yields every piece that is a prefix of it, shortest first, which is the
 * order SentencePiece's double-array traversal reports them in. */
#include "tok_internal.h"

#include "error.h"

#include <stdlib.h>
#include <string.h>

static int entry_cmp(const void *pa, const void *pb)
{
    const tok_entry *a = pa, *b = pb;
    uint32_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->text, b->text, n);
    if (c)
        return c;
    return (a->len > b->len) - (a->len < b->len);
}

int tok_trie_build(tok_trie *t, const tok_piece_def *pieces, int n_pieces, unsigned type_mask)
{
    t->n = 0;
    t->e = malloc(sizeof *t->e * (size_t)(n_pieces ? n_pieces : 1));
    if (!t->e)
        return err_set(REEL_E_NOMEM, "tokenizer: index of %d pieces", n_pieces);
    for (int i = 0; i < n_pieces; i++)
        if (type_mask & (1u << pieces[i].type))
            t->e[t->n++] = (tok_entry){pieces[i].text, pieces[i].len, i};
    qsort(t->e, (size_t)t->n, sizeof *t->e, entry_cmp);
    return REEL_OK;
}

void tok_trie_free(tok_trie *t)
{
    free(t->e);
    t->e = NULL;
    t->n = 0;
}

/* First index in [lo, hi) whose byte at depth d is greater than (upper) or not less than b.
 * Every entry there is longer than d. */
static int bound(const tok_trie *t, int lo, int hi, uint32_t d, uint8_t b, bool upper)
{
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        uint8_t c = (uint8_t)t->e[mid].text[d];
        if (c < b || (upper && c == b))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool tok_trie_step(const tok_trie *t, tok_cursor *c, uint8_t byte, int32_t *id)
{
    int lo = c->lo, hi = c->hi;
    /* The piece equal to the shared prefix, if any, sorts first and has no byte at depth. */
    if (lo < hi && t->e[lo].len == c->depth)
        lo++;
    int first = bound(t, lo, hi, c->depth, byte, false);
    int last = bound(t, first, hi, c->depth, byte, true);
    if (first == last)
        return false;
    c->lo = first;
    c->hi = last;
    c->depth++;
    *id = t->e[first].len == c->depth ? t->e[first].id : -1;
    return true;
}
