/* tok_encode: normalise, segment, then the end-of-sequence id and truncation the way Hugging
 * Face's T5 tokenizer applies them (room is kept for EOS, which stays last). */
#include "tok_internal.h"

#include "error.h"

#include <stdlib.h>
#include <string.h>

int tok_encode_all(const tokenizer *t, const char *text, int add_eos, int32_t **ids, int *n)
{
    if (!t || !text || !ids || !n)
        return err_set(REEL_E_INVALID, "tok_encode: NULL argument");
    *ids = NULL;
    *n = 0;
    if (add_eos && t->eos_id < 0)
        return err_set(REEL_E_UNSUPPORTED,
                       "%s: the model has no </s> control piece to end a sequence", t->source);
    tok_buf norm = {0};
    tok_ids v = {0};
    int st = tok_normalize(t, text, strlen(text), &norm);
    if (st >= 0)
        st = tok_unigram_encode(t, norm.p, norm.n, &v);
    if (st >= 0 && add_eos)
        st = tok_ids_push(&v, t->eos_id);
    tok_buf_free(&norm);
    if (st < 0) {
        free(v.v);
        return st;
    }
    *ids = v.v;
    *n = v.n;
    return REEL_OK;
}

int tok_encode(const tokenizer *t, const char *text, int add_eos, int max_len, int32_t *ids, int *n)
{
    if (max_len < 1)
        return err_set(REEL_E_INVALID, "tok_encode: max_len %d (must be at least 1)", max_len);
    if (!ids || !n)
        return err_set(REEL_E_INVALID, "tok_encode: NULL argument");
    int32_t *all;
    int count;
    TRY(tok_encode_all(t, text, add_eos, &all, &count));
    int keep = count < max_len ? count : max_len;
    if (add_eos && count > max_len) {
        memcpy(ids, all, sizeof *ids * (size_t)(max_len - 1));
        ids[max_len - 1] = t->eos_id;
    } else if (keep) {
        memcpy(ids, all, sizeof *ids * (size_t)keep);
    }
    *n = keep;
    free(all);
    return REEL_OK;
}
