/* Inside the tokenizer: the model every loader produces, and the helpers the stages share.
 * Data flow of one encode:
 *   text --tok_normalize (tok_normalize.c, charsmap in tok_charsmap.c)--> normalised bytes
 *        --tok_unigram_encode (tok_unigram.c, piece lookup in tok_trie.c)--> ids
 * Loaders: tok_spm.c (spiece.model, protobuf via tok_proto.c), tok_hfjson.c (tokenizer.json);
 * both fill a tok_spec and hand it to tok_build (tok_model.c). */
#ifndef REEL_TOK_INTERNAL_H
#define REEL_TOK_INTERNAL_H

#include "tokenizer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SentencePiece piece types (sentencepiece_model.proto, ModelProto.SentencePiece.Type). */
enum tok_type {
    TOK_NORMAL = 1,
    TOK_UNKNOWN = 2,
    TOK_CONTROL = 3,
    TOK_USER_DEFINED = 4,
    TOK_UNUSED = 5,
    TOK_BYTE = 6
};

typedef struct tok_piece_def {
    const char *text; /* not NUL-terminated while in a tok_spec; NUL-terminated in a tokenizer */
    uint32_t len;
    float score;
    int type;
} tok_piece_def;

/* What a loader read from a model file. Piece texts and the charsmap are borrowed from the
 * loader's buffers; tok_build copies what it keeps. */
typedef struct tok_spec {
    const char *source; /* file path, for messages */
    tok_piece_def *pieces;
    int n_pieces;
    const uint8_t *charsmap; /* precompiled charsmap blob, NULL or empty for none */
    size_t charsmap_size;
    bool add_dummy_prefix;
    bool remove_extra_whitespaces;
    bool escape_whitespaces;
    bool treat_whitespace_as_suffix;
    bool byte_fallback;
    /* Names of the special pieces, looked up by text as SentencePiece does. */
    const char *eos_piece;
    const char *pad_piece;
} tok_spec;

/* Pieces sorted by their bytes: a trie without nodes. All entries in [lo, hi) of a cursor share
 * the first `depth` bytes. */
typedef struct tok_entry {
    const char *text;
    uint32_t len;
    int32_t id;
} tok_entry;

typedef struct tok_trie {
    tok_entry *e;
    int n;
} tok_trie;

typedef struct tok_cursor {
    int lo, hi;
    uint32_t depth;
} tok_cursor;

/* The precompiled charsmap: a darts-clone double array over the source byte sequences whose
 * leaf values are offsets of NUL-terminated replacements in `norm`. */
typedef struct tok_charsmap {
    uint32_t *units;
    size_t n_units;
    char *norm;
    size_t norm_size;
} tok_charsmap;

struct tokenizer {
    char *source;
    tok_piece_def *pieces;
    int n_pieces;
    char *pool;                 /* piece texts, each NUL-terminated */
    tok_trie vocab;             /* NORMAL, USER_DEFINED and UNUSED pieces: what Viterbi can match */
    tok_trie user;              /* USER_DEFINED pieces: kept verbatim by the normaliser */
    int32_t byte_id[256];       /* id of <0xXX> per byte when byte_fallback */
    float min_score, max_score; /* over NORMAL pieces */
    int unk_id, eos_id, pad_id;
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    bool treat_whitespace_as_suffix, byte_fallback;
    tok_charsmap cmap;
};

/* tok_model.c */
int tok_build(const tok_spec *spec, tokenizer **out);
/* "<0x41>" -> 0x41; -1 for anything else (SentencePiece knows only its own %02X spelling). */
int tok_byte_of_piece(const char *text, uint32_t len);

/* tok_spm.c, tok_hfjson.c: parse a file already in memory. */
int tok_spm_parse(const uint8_t *data, size_t size, const char *source, tokenizer **out);
int tok_hfjson_parse(const char *text, size_t size, const char *source, tokenizer **out);

/* tok_charsmap.c */
int tok_charsmap_init(tok_charsmap *m, const uint8_t *blob, size_t size, const char *source);
void tok_charsmap_free(tok_charsmap *m);
/* Longest rule whose source is a prefix of s[0..n): returns the bytes it consumes (0: none) and
 * its replacement in *repl (NUL-terminated, possibly empty). */
size_t tok_charsmap_match(const tok_charsmap *m, const char *s, size_t n, const char **repl);

/* tok_trie.c */
int tok_trie_build(tok_trie *t, const tok_piece_def *pieces, int n_pieces, unsigned type_mask);
void tok_trie_free(tok_trie *t);
static inline tok_cursor tok_trie_root(const tok_trie *t) { return (tok_cursor){0, t->n, 0}; }
/* Follows one more byte. Returns false when no piece continues with it; otherwise *id is the
 * piece that ends exactly here, or -1. */
bool tok_trie_step(const tok_trie *t, tok_cursor *c, uint8_t byte, int32_t *id);

/* tok_text.c: growable byte buffer and UTF-8 as SentencePiece reads it. */
typedef struct tok_buf {
    char *p;
    size_t n, cap;
} tok_buf;
int tok_buf_put(tok_buf *b, const void *data, size_t n);
void tok_buf_free(tok_buf *b);

/* Byte length of the UTF-8 character starting with byte c, from its high nibble only (as
 * SentencePiece's OneCharLen; callers clip it to the bytes left). */
static inline size_t tok_utf8_len(uint8_t c) { return "\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[c >> 4]; }
/* Decodes one character of s[0..n) (n >= 1). On malformed input returns 0xFFFD with *len 1; a
 * real U+FFFD returns *len 3. */
uint32_t tok_utf8_decode(const char *s, size_t n, size_t *len);
size_t tok_utf8_encode(uint32_t cp, char out[4]);

/* tok_normalize.c: SentencePiece's Normalizer::Normalize. out is reset first. */
int tok_normalize(const tokenizer *t, const char *text, size_t len, tok_buf *out);

/* tok_unigram.c: segmentation of normalised text, then unknown handling; ids appended to out. */
typedef struct tok_ids {
    int32_t *v;
    int n, cap;
} tok_ids;
int tok_unigram_encode(const tokenizer *t, const char *norm, size_t len, tok_ids *out);
int tok_ids_push(tok_ids *ids, int32_t id);

#endif
