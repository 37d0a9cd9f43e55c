/* Wan's prompt cleaning for its T5 tokenizer (wan/modules/tokenizers.py, clean='whitespace'):
 *     whitespace_clean(basic_clean(text))
 *     basic_clean(t)      = html.unescape(html.unescape(ftfy.fix_text(t))).strip()
 *     whitespace_clean(t) = re.sub(r"\s+", " ", t).strip()
 *
 * ftfy.fix_text (ftfy 6, default settings) is reproduced in part. Done, in ftfy's order, per line
 * and repeated until the line stops changing, as ftfy does:
 *   unescape_html (HTML5 entities, ftfy's upper-case names such as &NTILDE;, numeric references;
 *                  skipped from the first line holding '<' on, as ftfy's "auto" setting does),
 *   fix_c1_controls (U+0080..U+009F read as Windows-1252), fix_latin_ligatures,
 *   fix_character_width (full-/half-width forms and U+3000), uncurl_quotes,
 *   remove_terminal_escapes (ESC [ digits/; letter, ASCII digits only), remove_control_chars.
 * Not done:
 *   fix_encoding with restore_byte_a0, replace_lossy_sequences, decode_inconsistent_utf8 (the
 *     mojibake heuristics: text such as "cafÃ©" is kept as written);
 *   normalization="NFC" (the umT5 charsmap applies NFKC to the text afterwards, which subsumes
 *     NFC for tokenizing);
 *   fix_line_breaks and fix_surrogates (no effect here: every line break becomes a space below,
 *     and UTF-8 input holds no surrogates).
 * Malformed UTF-8 in the input is read as U+FFFD per byte.
 * Whitespace is Python's str.isspace set; the `regex` module's \s differs from it only on
 * U+001C..U+001F and U+0085, which ftfy has removed or replaced before the two are used. */
#include "tok_clean_tables.h"
#include "tok_internal.h"

#include "error.h"

#include <stdlib.h>
#include <string.h>

typedef struct cps {
    uint32_t *v;
    size_t n, cap;
} cps;

static int cps_push(cps *c, uint32_t cp)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        uint32_t *v = realloc(c->v, sizeof *v * cap);
        if (!v)
            return err_set(REEL_E_NOMEM, "prompt cleaning: %zu characters", cap);
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = cp;
    return REEL_OK;
}

static int cps_push_utf8(cps *c, const char *s)
{
    size_t n = strlen(s), len;
    for (size_t i = 0; i < n; i += len)
        TRY(cps_push(c, tok_utf8_decode(s + i, n - i, &len)));
    return REEL_OK;
}

static int cps_append(cps *c, const uint32_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        TRY(cps_push(c, v[i]));
    return REEL_OK;
}

static bool cps_equal(const cps *a, const cps *b)
{
    return a->n == b->n && (!a->n || !memcmp(a->v, b->v, sizeof *a->v * a->n));
}

static void cps_swap(cps *a, cps *b)
{
    cps t = *a;
    *a = *b;
    *b = t;
}

/* ---- tables -------------------------------------------------------------------------------- */

/* Windows-1252 for 0x80..0x9F, with the five undefined bytes kept (ftfy's sloppy-windows-1252;
 * html.unescape's table for &#128;..&#159; is the same). */
static const uint16_t k_cp1252_c1[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

static const struct {
    uint32_t cp;
    const char *value;
} k_ligatures[] = {
    {0x0132, "IJ"},        {0x0133, "ij"},        {0x0149, "\xCA\xBCn"}, {0x01C4, "D\xC5\xBD"},
    {0x01C5, "D\xC5\xBE"}, {0x01C6, "d\xC5\xBE"}, {0x01C7, "LJ"},        {0x01C8, "Lj"},
    {0x01C9, "lj"},        {0x01CA, "NJ"},        {0x01CB, "Nj"},        {0x01CC, "nj"},
    {0x01F1, "DZ"},        {0x01F2, "Dz"},        {0x01F3, "dz"},        {0xFB00, "ff"},
    {0xFB01, "fi"},        {0xFB02, "fl"},        {0xFB03, "ffi"},       {0xFB04, "ffl"},
    {0xFB05, "\xC5\xBFt"}, {0xFB06, "st"},
};

static bool is_control(uint32_t c)
{
    return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
           (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

static bool is_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

static bool is_ascii_alnum(uint32_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int hex_digit(uint32_t c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

/* Entity names are ASCII; other characters become \1, which no name holds. */
static const char *find_entity(const tok_entity *table, int count, const uint32_t *name, size_t len)
{
    char key[40];
    if (len >= sizeof key)
        return NULL;
    for (size_t i = 0; i < len; i++)
        key[i] = name[i] < 0x80 ? (char)name[i] : '\1';
    key[len] = 0;
    int lo = 0, hi = count;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(table[mid].name, key);
        if (!c)
            return table[mid].value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- html.unescape ------------------------------------------------------------------------- */

/* Python's html._replace_charref for a number (saturated: anything past U+10FFFF acts alike). */
static int push_charref(cps *out, uint32_t num)
{
    if (num == 0)
        return cps_push(out, 0xFFFD);
    if (num == 0x0D)
        return cps_push(out, 0x0D);
    if (num >= 0x80 && num <= 0x9F)
        return cps_push(out, k_cp1252_c1[num - 0x80]);
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF)
        return cps_push(out, 0xFFFD);
    bool invalid = (num >= 0x01 && num <= 0x08) || num == 0x0B || (num >= 0x0E && num <= 0x1F) ||
                   num == 0x7F || (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE;
    return invalid ? REEL_OK : cps_push(out, num);
}

/* One reference at in[i] == '&' (regex &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)).
 * Returns the characters consumed, 0 when nothing matches there. */
static int html_ref(const uint32_t *in, size_t n, size_t i, cps *out, size_t *used)
{
    size_t j = i + 1;
    *used = 0;
    if (j < n && in[j] == '#') {
        size_t k = j + 1;
        int base = 10;
        if (k < n && (in[k] == 'x' || in[k] == 'X') && k + 1 < n && hex_digit(in[k + 1]) >= 0) {
            base = 16;
            k++;
        } else if (!(k < n && in[k] >= '0' && in[k] <= '9')) {
            return REEL_OK;
        }
        uint32_t num = 0;
        for (; k < n && (base == 16 ? hex_digit(in[k]) >= 0 : in[k] >= '0' && in[k] <= '9'); k++) {
            uint32_t d = (uint32_t)hex_digit(in[k]);
            num = num > 0x110000 ? num : num * (uint32_t)base + d;
        }
        if (k < n && in[k] == ';')
            k++;
        *used = k - i;
        return push_charref(out, num);
    }
    size_t k = j;
    while (k < n && k - j < 32 && in[k] != '\t' && in[k] != '\n' && in[k] != '\f' && in[k] != ' ' &&
           in[k] != '<' && in[k] != '&' && in[k] != '#' && in[k] != ';')
        k++;
    if (k == j)
        return REEL_OK;
    if (k < n && in[k] == ';')
        k++;
    *used = k - i;
    const uint32_t *s = in + j;
    size_t len = k - j;
    const char *v = find_entity(tok_html5_entities, tok_html5_entities_count, s, len);
    if (v)
        return cps_push_utf8(out, v);
    /* The longest known prefix (entities such as &amp work without their ';'). */
    for (size_t x = len - 1; x >= 2 && x < len; x--)
        if ((v = find_entity(tok_html5_entities, tok_html5_entities_count, s, x))) {
            TRY(cps_push_utf8(out, v));
            return cps_append(out, s + x, len - x);
        }
    return cps_append(out, in + i, k - i);
}

static int html_unescape(const cps *in, cps *out)
{
    out->n = 0;
    for (size_t i = 0; i < in->n;) {
        size_t used = 0;
        if (in->v[i] == '&')
            TRY(html_ref(in->v, in->n, i, out, &used));
        if (used) {
            i += used;
        } else {
            TRY(cps_push(out, in->v[i]));
            i++;
        }
    }
    return REEL_OK;
}

/* ---- ftfy ---------------------------------------------------------------------------------- */

/* ftfy's unescape_html: matches of &#?[0-9A-Za-z]{1,24}; that are HTML5 names, ftfy's upper-case
 * names, or numeric references html.unescape decodes whole. */
static int ftfy_unescape(const cps *in, cps *out)
{
    out->n = 0;
    for (size_t i = 0; i < in->n;) {
        const uint32_t *v = in->v;
        size_t k = i + 1 < in->n && v[i + 1] == '#' ? i + 2 : i + 1, run = 0;
        while (v[i] == '&' && k + run < in->n && run <= 24 && is_ascii_alnum(v[k + run]))
            run++;
        if (run == 0 || run > 24 || k + run >= in->n || v[k + run] != ';') {
            TRY(cps_push(out, v[i]));
            i++;
            continue;
        }
        size_t end = k + run + 1;
        const uint32_t *name = v + i + 1;
        const char *named =
            find_entity(tok_html5_entities, tok_html5_entities_count, name, end - i - 1);
        if (!named)
            named = find_entity(tok_ftfy_upper_entities, tok_ftfy_upper_entities_count, name,
                                end - i - 1);
        if (named) {
            TRY(cps_push_utf8(out, named));
        } else if (v[i + 1] == '#') {
            cps one = {0}, dec = {0};
            int st = cps_append(&one, v + i, end - i);
            if (st >= 0)
                st = html_unescape(&one, &dec);
            bool whole = true;
            for (size_t x = 0; x < dec.n; x++)
                whole = whole && dec.v[x] != ';';
            if (st >= 0)
                st = whole ? cps_append(out, dec.v, dec.n) : cps_append(out, v + i, end - i);
            free(one.v);
            free(dec.v);
            TRY(st);
        } else {
            TRY(cps_append(out, v + i, end - i));
        }
        i = end;
    }
    return REEL_OK;
}

/* fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes: one character at a
 * time, each step applied to the previous one's output as ftfy's successive passes do. */
static int push_uncurled(cps *out, uint32_t c)
{
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B))
        c = '\'';
    else if (c >= 0x201C && c <= 0x201F)
        c = '"';
    return cps_push(out, c);
}

static int push_width_fixed(cps *out, uint32_t c)
{
    int lo = 0, hi = tok_width_map_count;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (tok_width_map[mid].cp == c) {
            cps alt = {0};
            int st = cps_push_utf8(&alt, tok_width_map[mid].value);
            for (size_t i = 0; i < alt.n && st >= 0; i++)
                st = push_uncurled(out, alt.v[i]);
            free(alt.v);
            return st;
        }
        if (tok_width_map[mid].cp < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return push_uncurled(out, c);
}

static int char_fixes(const cps *in, cps *out)
{
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->v[i];
        if (c >= 0x80 && c <= 0x9F)
            c = k_cp1252_c1[c - 0x80];
        const char *lig = NULL;
        for (size_t k = 0; k < sizeof k_ligatures / sizeof k_ligatures[0]; k++)
            if (k_ligatures[k].cp == c)
                lig = k_ligatures[k].value;
        if (!lig) {
            TRY(push_width_fixed(out, c));
            continue;
        }
        cps parts = {0};
        int st = cps_push_utf8(&parts, lig);
        for (size_t k = 0; k < parts.n && st >= 0; k++)
            st = push_width_fixed(out, parts.v[k]);
        free(parts.v);
        TRY(st);
    }
    return REEL_OK;
}

/* remove_terminal_escapes (\x1b\[[0-9;]*[a-zA-Z]), then remove_control_chars. */
static int strip_escapes_and_controls(const cps *in, cps *out)
{
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        const uint32_t *v = in->v;
        if (v[i] == 0x1B && i + 1 < in->n && v[i + 1] == '[') {
            size_t k = i + 2;
            while (k < in->n && ((v[k] >= '0' && v[k] <= '9') || v[k] == ';'))
                k++;
            if (k < in->n && v[k] < 0x80 && ((v[k] | 0x20) >= 'a' && (v[k] | 0x20) <= 'z')) {
                i = k;
                continue;
            }
        }
        if (!is_control(v[i]))
            TRY(cps_push(out, v[i]));
    }
    return REEL_OK;
}

/* ftfy.fix_and_explain on one segment: the fixes until nothing changes. Each round leaves the
 * text shorter or settled; the bound only guards against a table that would cycle. */
static int ftfy_segment(cps *seg, bool unescape, cps *tmp)
{
    cps orig = {0};
    int st = REEL_OK;
    for (int round = 0; round < 64 && st >= 0; round++) {
        orig.n = 0;
        if ((st = cps_append(&orig, seg->v, seg->n)) < 0)
            break;
        if (unescape) {
            if ((st = ftfy_unescape(seg, tmp)) < 0)
                break;
            cps_swap(seg, tmp);
        }
        if ((st = char_fixes(seg, tmp)) < 0)
            break;
        cps_swap(seg, tmp);
        if ((st = strip_escapes_and_controls(seg, tmp)) < 0)
            break;
        cps_swap(seg, tmp);
        if (cps_equal(seg, &orig))
            break;
    }
    free(orig.v);
    return st;
}

/* ftfy.fix_text: segments end after each '\n' (at most 10^6 characters each); HTML unescaping
 * stops for good at the first segment that holds '<'. */
static int ftfy_fix_text(const cps *in, cps *out)
{
    cps seg = {0}, tmp = {0};
    bool unescape = true;
    int st = REEL_OK;
    out->n = 0;
    for (size_t pos = 0; pos < in->n && st >= 0;) {
        size_t end = pos;
        while (end < in->n && in->v[end] != '\n' && end - pos < 1000000)
            end++;
        if (end < in->n && in->v[end] == '\n' && end - pos < 1000000)
            end++;
        seg.n = 0;
        st = cps_append(&seg, in->v + pos, end - pos);
        for (size_t i = 0; i < seg.n && unescape; i++)
            unescape = seg.v[i] != '<';
        if (st >= 0)
            st = ftfy_segment(&seg, unescape, &tmp);
        if (st >= 0)
            st = cps_append(out, seg.v, seg.n);
        pos = end;
    }
    free(seg.v);
    free(tmp.v);
    return st;
}

/* ---- whole cleaning ------------------------------------------------------------------------ */

/* strip(), then every whitespace run becomes one space, then strip() again. */
static int collapse_whitespace(const cps *in, tok_buf *out)
{
    size_t b = 0, e = in->n;
    while (b < e && is_space(in->v[b]))
        b++;
    while (e > b && is_space(in->v[e - 1]))
        e--;
    for (size_t i = b; i < e;) {
        if (is_space(in->v[i])) {
            while (i < e && is_space(in->v[i]))
                i++;
            TRY(tok_buf_put(out, " ", 1));
            continue;
        }
        char u[4];
        TRY(tok_buf_put(out, u, tok_utf8_encode(in->v[i], u)));
        i++;
    }
    return tok_buf_put(out, "", 1);
}

int tok_clean_prompt(const char *text, char **out)
{
    if (!text || !out)
        return err_set(REEL_E_INVALID, "tok_clean_prompt: NULL argument");
    *out = NULL;
    cps a = {0}, b = {0};
    tok_buf res = {0};
    size_t n = strlen(text), len;
    int st = REEL_OK;
    for (size_t i = 0; i < n && st >= 0; i += len)
        st = cps_push(&a, tok_utf8_decode(text + i, n - i, &len));
    if (st >= 0)
        st = ftfy_fix_text(&a, &b);
    if (st >= 0)
        st = html_unescape(&b, &a);
    if (st >= 0)
        st = html_unescape(&a, &b);
    if (st >= 0)
        st = collapse_whitespace(&b, &res);
    free(a.v);
    free(b.v);
    if (st < 0) {
        tok_buf_free(&res);
        return st;
    }
    *out = res.p;
    return REEL_OK;
}
