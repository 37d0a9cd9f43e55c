/* SentencePiece's Normalizer::Normalize (normalizer.cc), step for step, since every detail shows
 * in the ids: the text is consumed one rule at a time (a user-defined piece kept verbatim, else
 * the longest charsmap rule, else one UTF-8 character, else one malformed byte read as U+FFFD);
 * leading spaces, runs of spaces and trailing spaces are dropped (remove_extra_whitespaces);
 * spaces become U+2581 (escape_whitespaces); one U+2581 goes in front (add_dummy_prefix), or at
 * the end when the model treats whitespace as a suffix. "Space" is judged on the rule output, so
 * characters the charsmap maps to " " (NBSP, ideographic space, tabs under NFKC) count too. */
#include "tok_internal.h"

#include "error.h"

#include <string.h>

static const char k_space_symbol[] = "\xE2\x96\x81"; /* U+2581 LOWER ONE EIGHTH BLOCK */

/* One rule at the start of s[0..n): returns the bytes it consumes; its output is the *out_len
 * bytes at *out. */
static size_t normalize_prefix(const tokenizer *t, const char *s, size_t n, const char **out,
                               size_t *out_len)
{
    if (t->user.n) {
        tok_cursor c = tok_trie_root(&t->user);
        size_t longest = 0;
        int32_t id;
        for (size_t i = 0; i < n && tok_trie_step(&t->user, &c, (uint8_t)s[i], &id); i++)
            if (id >= 0)
                longest = i + 1;
        if (longest) {
            *out = s;
            *out_len = longest;
            return longest;
        }
    }
    const char *repl;
    size_t used = tok_charsmap_match(&t->cmap, s, n, &repl);
    if (used) {
        *out = repl;
        *out_len = strlen(repl);
        return used;
    }
    size_t len;
    uint32_t cp = tok_utf8_decode(s, n, &len);
    if (cp == 0xFFFD && len != 3) {
        *out = "\xEF\xBF\xBD";
        *out_len = 3;
        return 1;
    }
    *out = s;
    *out_len = len;
    return len;
}

static int put_space(const tokenizer *t, tok_buf *out)
{
    return t->escape_whitespaces ? tok_buf_put(out, k_space_symbol, 3) : tok_buf_put(out, " ", 1);
}

int tok_normalize(const tokenizer *t, const char *text, size_t len, tok_buf *out)
{
    out->n = 0;
    const char *sp;
    size_t sp_len;
    if (t->remove_extra_whitespaces) {
        while (len) {
            size_t used = normalize_prefix(t, text, len, &sp, &sp_len);
            if (sp_len != 1 || sp[0] != ' ')
                break;
            text += used;
            len -= used;
        }
    }
    if (!len)
        return REEL_OK;
    if (!t->treat_whitespace_as_suffix && t->add_dummy_prefix)
        TRY(put_space(t, out));

    bool prev_space = t->remove_extra_whitespaces;
    while (len) {
        size_t used = normalize_prefix(t, text, len, &sp, &sp_len);
        while (prev_space && sp_len && sp[0] == ' ') {
            sp++;
            sp_len--;
        }
        if (sp_len) {
            for (size_t i = 0; i < sp_len; i++) {
                if (sp[i] == ' ' && t->escape_whitespaces)
                    TRY(tok_buf_put(out, k_space_symbol, 3));
                else
                    TRY(tok_buf_put(out, sp + i, 1));
            }
            prev_space = sp[sp_len - 1] == ' ';
        }
        text += used;
        len -= used;
        if (!t->remove_extra_whitespaces)
            prev_space = false;
    }

    if (t->remove_extra_whitespaces) {
        const char *space = t->escape_whitespaces ? k_space_symbol : " ";
        size_t space_len = strlen(space);
        while (out->n >= space_len && !memcmp(out->p + out->n - space_len, space, space_len))
            out->n -= space_len;
    }
    if (t->treat_whitespace_as_suffix && t->add_dummy_prefix)
        TRY(put_space(t, out));
    return REEL_OK;
}
