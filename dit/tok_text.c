/* Byte buffers and UTF-8 decoding shared by the normaliser and the prompt cleaner. Decoding
 * follows SentencePiece's string_util::DecodeUTF8 so that malformed input is split and replaced
 * exactly where SentencePiece does it. */
#include "tok_internal.h"

#include "error.h"

#include <stdlib.h>
#include <string.h>

int tok_buf_put(tok_buf *b, const void *data, size_t n)
{
    if (n > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->n < n) {
            if (cap > SIZE_MAX / 2)
                return err_set(REEL_E_NOMEM, "tokenizer: text buffer of %zu bytes", b->n + n);
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p)
            return err_set(REEL_E_NOMEM, "tokenizer: text buffer of %zu bytes", cap);
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, data, n);
    b->n += n;
    return REEL_OK;
}

void tok_buf_free(tok_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

static bool is_trail(uint8_t c) { return (c & 0xC0) == 0x80; }

static bool is_scalar(uint32_t cp) { return cp < 0xD800 || (cp >= 0xE000 && cp <= 0x10FFFF); }

uint32_t tok_utf8_decode(const char *str, size_t n, size_t *len)
{
    const uint8_t *s = (const uint8_t *)str;
    if (s[0] < 0x80) {
        *len = 1;
        return s[0];
    }
    if (n >= 2 && (s[0] & 0xE0) == 0xC0) {
        uint32_t cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        if (is_trail(s[1]) && cp >= 0x80) {
            *len = 2;
            return cp;
        }
    } else if (n >= 3 && (s[0] & 0xF0) == 0xE0) {
        uint32_t cp =
            ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        if (is_trail(s[1]) && is_trail(s[2]) && cp >= 0x800 && is_scalar(cp)) {
            *len = 3;
            return cp;
        }
    } else if (n >= 4 && (s[0] & 0xF8) == 0xF0) {
        uint32_t cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                      ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        if (is_trail(s[1]) && is_trail(s[2]) && is_trail(s[3]) && cp >= 0x10000 && is_scalar(cp)) {
            *len = 4;
            return cp;
        }
    }
    *len = 1;
    return 0xFFFD;
}

size_t tok_utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
