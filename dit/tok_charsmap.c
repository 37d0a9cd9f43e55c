/* SentencePiece's precompiled charsmap (normalizer.cc): the normalisation rules of a model
 * (NFKC and its variants) compiled into one blob:
 *   uint32 little-endian trie size in bytes | darts-clone double array | replacement strings
 * The double array maps a source byte sequence to the offset of its NUL-terminated replacement.
 * A darts-clone unit packs, in 32 bits: label (low 8 bits, bit 31 set on leaf units), has_leaf
 * (bit 8), and the offset to the children (bits 10..31, shifted by 8 more when bit 9 is set).
 *
 * Files come from users, so the whole reachable trie is checked once at load: every later lookup
 * stays inside the array and every replacement ends inside the blob. */
#include "tok_internal.h"

#include "error.h"

#include <stdlib.h>
#include <string.h>

static uint32_t unit_label(uint32_t u) { return u & 0x800000FFu; }
static bool unit_has_leaf(uint32_t u) { return (u >> 8) & 1; }
static uint32_t unit_value(uint32_t u) { return u & 0x7FFFFFFFu; }
static uint32_t unit_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }

static uint32_t read_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Walks every node a lookup can reach (children are probed with each byte value, as a lookup
 * would) and checks the leaf values. The visited mark makes shared sub-tries (darts-clone builds
 * a DAWG when values are given) and malicious cycles cost one visit each. */
static int check_reachable(const tok_charsmap *m, const char *source)
{
    size_t n = m->n_units;
    uint8_t *seen = calloc(n, 1);
    size_t *stack = malloc(sizeof *stack * n);
    int st = REEL_OK;
    if (!seen || !stack) {
        st = err_set(REEL_E_NOMEM, "%s: charsmap of %zu units", source, n);
        goto done;
    }
    size_t top = 0;
    stack[top++] = 0;
    seen[0] = 1;
    while (top) {
        size_t p = stack[--top];
        size_t base = p ^ unit_offset(m->units[p]);
        if (p != 0 && unit_has_leaf(m->units[p])) {
            if (base >= n || unit_value(m->units[base]) >= m->norm_size) {
                st = err_set(REEL_E_FORMAT, "%s: charsmap rule at unit %zu points outside the blob",
                             source, p);
                goto done;
            }
        }
        for (uint32_t c = 1; c < 256; c++) {
            size_t q = base ^ c;
            if (q < n && unit_label(m->units[q]) == c && !seen[q]) {
                seen[q] = 1;
                stack[top++] = q;
            }
        }
    }
done:
    free(seen);
    free(stack);
    return st;
}

int tok_charsmap_init(tok_charsmap *m, const uint8_t *blob, size_t size, const char *source)
{
    memset(m, 0, sizeof *m);
    if (size == 0)
        return REEL_OK; /* identity normalisation: no rules */
    if (size <= 4)
        return err_set(REEL_E_FORMAT, "%s: precompiled charsmap of %zu bytes is too short", source,
                       size);
    uint32_t trie_size = read_le32(blob);
    if (trie_size > size - 4 || trie_size == 0 || trie_size % 4)
        return err_set(REEL_E_FORMAT,
                       "%s: charsmap trie size %u does not fit its %zu-byte blob (or is not a "
                       "positive multiple of 4)",
                       source, trie_size, size);
    m->n_units = trie_size / 4;
    m->norm_size = size - 4 - trie_size;
    m->units = malloc(trie_size);
    m->norm = malloc(m->norm_size + 1);
    if (!m->units || !m->norm) {
        tok_charsmap_free(m);
        return err_set(REEL_E_NOMEM, "%s: charsmap of %zu bytes", source, size);
    }
    for (size_t i = 0; i < m->n_units; i++)
        m->units[i] = read_le32(blob + 4 + 4 * i);
    memcpy(m->norm, blob + 4 + trie_size, m->norm_size);
    m->norm[m->norm_size] = 0;
    if (m->norm_size && m->norm[m->norm_size - 1] != 0) {
        tok_charsmap_free(m);
        return err_set(REEL_E_FORMAT, "%s: charsmap replacement strings are not NUL-terminated",
                       source);
    }
    int st = check_reachable(m, source);
    if (st < 0)
        tok_charsmap_free(m);
    return st;
}

void tok_charsmap_free(tok_charsmap *m)
{
    free(m->units);
    free(m->norm);
    memset(m, 0, sizeof *m);
}

size_t tok_charsmap_match(const tok_charsmap *m, const char *s, size_t n, const char **repl)
{
    if (!m->units)
        return 0;
    size_t best = 0;
    size_t pos = unit_offset(m->units[0]);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        pos ^= c;
        if (pos >= m->n_units || unit_label(m->units[pos]) != c)
            break;
        uint32_t u = m->units[pos];
        pos ^= unit_offset(u);
        if (unit_has_leaf(u)) {
            best = i + 1;
            *repl = m->norm + unit_value(m->units[pos]);
        }
    }
    return best;
}
