/* Writes SentencePiece model files (a ModelProto in protobuf wire format) from a list of pieces,
 * for the tokenizer tests: hand-made models with chosen scores to compare with spm_encode, and
 * valid files to corrupt. Field numbers are those of sentencepiece_model.proto. */
#ifndef REEL_TEST_SPM_WRITER_H
#define REEL_TEST_SPM_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pbw {
    uint8_t *p;
    size_t n, cap;
} pbw;

static inline void pbw_bytes(pbw *w, const void *data, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->p = realloc(w->p, w->cap);
        if (!w->p) {
            perror("realloc");
            exit(1);
        }
    }
    memcpy(w->p + w->n, data, n);
    w->n += n;
}

static inline void pbw_varint(pbw *w, uint64_t v)
{
    do {
        uint8_t b = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v)
            b |= 0x80;
        pbw_bytes(w, &b, 1);
    } while (v);
}

static inline void pbw_key(pbw *w, uint32_t field, int wire)
{
    pbw_varint(w, (uint64_t)field << 3 | (uint32_t)wire);
}

static inline void pbw_len_field(pbw *w, uint32_t field, const void *data, size_t n)
{
    pbw_key(w, field, 2);
    pbw_varint(w, n);
    pbw_bytes(w, data, n);
}

static inline void pbw_varint_field(pbw *w, uint32_t field, uint64_t v)
{
    pbw_key(w, field, 0);
    pbw_varint(w, v);
}

static inline void pbw_float_field(pbw *w, uint32_t field, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    pbw_key(w, field, 5);
    pbw_bytes(w, b, 4);
}

typedef struct spm_piece_spec {
    const char *text;
    float score;
    int type; /* 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte */
} spm_piece_spec;

typedef struct spm_model_spec {
    const spm_piece_spec *pieces;
    int n_pieces;
    bool byte_fallback; /* also appends the 256 <0xXX> byte pieces */
    bool treat_whitespace_as_suffix;
    bool no_dummy_prefix, keep_extra_whitespaces;
    const uint8_t *charsmap; /* precompiled charsmap blob, or NULL */
    size_t charsmap_size;
    int model_type; /* 0: UNIGRAM */
} spm_model_spec;

static inline void spm_write_piece(pbw *w, const char *text, float score, int type)
{
    pbw sp = {0};
    pbw_len_field(&sp, 1, text, strlen(text));
    pbw_float_field(&sp, 2, score);
    pbw_varint_field(&sp, 3, (uint64_t)type);
    pbw_len_field(w, 1, sp.p, sp.n);
    free(sp.p);
}

static inline pbw spm_write_model(const spm_model_spec *m)
{
    pbw w = {0}, trainer = {0}, norm = {0};
    for (int i = 0; i < m->n_pieces; i++)
        spm_write_piece(&w, m->pieces[i].text, m->pieces[i].score, m->pieces[i].type);
    for (int b = 0; m->byte_fallback && b < 256; b++) {
        char text[8];
        snprintf(text, sizeof text, "<0x%02X>", b);
        spm_write_piece(&w, text, 0.0f, 6);
    }
    pbw_varint_field(&trainer, 3, m->model_type ? (uint64_t)m->model_type : 1);
    pbw_varint_field(&trainer, 24, m->treat_whitespace_as_suffix);
    pbw_varint_field(&trainer, 35, m->byte_fallback);
    pbw_len_field(&w, 2, trainer.p, trainer.n);
    pbw_len_field(&norm, 1, "test", 4);
    if (m->charsmap)
        pbw_len_field(&norm, 2, m->charsmap, m->charsmap_size);
    pbw_varint_field(&norm, 3, !m->no_dummy_prefix);
    pbw_varint_field(&norm, 4, !m->keep_extra_whitespaces);
    pbw_len_field(&w, 3, norm.p, norm.n);
    free(trainer.p);
    free(norm.p);
    return w;
}

/* A precompiled charsmap for a few rules (source -> replacement), in SentencePiece's layout:
 * uint32 trie bytes | darts-clone units | NUL-terminated replacements. Not darts-clone's packing:
 * every trie node gets a block of 256 units of its own, its children at block + byte and its
 * leaf value at block + 0, which is valid for any reader of the format and easy to get right.
 * Unit: offset to the children block << 10 | has_leaf << 8 | label; leaf: 1 << 31 | value. */
typedef struct spm_rule {
    const char *from, *to;
} spm_rule;

static inline uint8_t *spm_build_charsmap(const spm_rule *rules, int n_rules, size_t *size)
{
    enum { MAX_NODES = 64 };
    uint32_t units[(MAX_NODES + 1) * 256] = {0};
    char norm[1024];
    size_t norm_n = 0;
    int n_nodes = 1; /* node k (unit index node_at[k]) owns block k + 1 */
    size_t node_at[MAX_NODES] = {0};
    for (int r = 0; r < n_rules; r++) {
        int node = 0;
        for (const unsigned char *p = (const unsigned char *)rules[r].from; *p; p++) {
            size_t block = (size_t)(node + 1) * 256, child = block + *p;
            units[node_at[node]] =
                (units[node_at[node]] & 0x1FF) | (uint32_t)((node_at[node] ^ block) << 10);
            if (!units[child]) {
                if (n_nodes == MAX_NODES) {
                    fprintf(stderr, "spm_build_charsmap: too many nodes\n");
                    exit(1);
                }
                node_at[n_nodes] = child;
                units[child] = *p;
                node = n_nodes++;
            } else {
                for (node = 0; node_at[node] != child; node++)
                    ;
            }
        }
        size_t leaf = (size_t)(node + 1) * 256;
        units[node_at[node]] =
            (units[node_at[node]] & 0xFF) | 1u << 8 | (uint32_t)((node_at[node] ^ leaf) << 10);
        units[leaf] = 0x80000000u | (uint32_t)norm_n;
        size_t len = strlen(rules[r].to) + 1;
        memcpy(norm + norm_n, rules[r].to, len);
        norm_n += len;
    }
    size_t n_units = (size_t)(n_nodes + 1) * 256;
    *size = 4 + 4 * n_units + norm_n;
    uint8_t *blob = malloc(*size);
    uint32_t trie = (uint32_t)(4 * n_units);
    for (int k = 0; k < 4; k++)
        blob[k] = (uint8_t)(trie >> (8 * k));
    for (size_t i = 0; i < n_units; i++)
        for (int k = 0; k < 4; k++)
            blob[4 + 4 * i + k] = (uint8_t)(units[i] >> (8 * k));
    memcpy(blob + 4 + 4 * n_units, norm, norm_n);
    return blob;
}

static inline bool pbw_save(const pbw *w, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(w->p, 1, w->n, f) == w->n;
    return fclose(f) == 0 && ok;
}

#endif
