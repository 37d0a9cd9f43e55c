/* The text tokenizer of the umT5 encoder: a SentencePiece unigram model, read from a
 * `spiece.model` protobuf or a Hugging Face `tokenizer.json`, that turns a UTF-8 prompt into
 * token ids exactly as SentencePiece's encoder does (normalisation through the model's
 * precompiled charsmap, whitespace escaped to U+2581 with the dummy prefix, Viterbi over the
 * piece scores, unknown characters merged into one <unk> or spelled as <0xXX> byte pieces).
 * Also Wan's prompt cleaning, which runs before tokenizing.
 *
 * A loaded tokenizer is read-only: several threads may encode with it at once. */
#ifndef REEL_TOKENIZER_H
#define REEL_TOKENIZER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tokenizer tokenizer;

/* path: a spiece.model, a tokenizer.json, or a folder holding either (spiece.model is preferred,
 * e.g. google/umt5-xxl/). The file kind is told by its content, not its name. */
int tok_load(const char *path, tokenizer **out);
void tok_free(tokenizer *t);

/* Encodes NUL-terminated UTF-8 text into at most max_len ids (max_len >= 1; ids has room for
 * max_len). add_eos appends the EOS id; when the text needs more than max_len ids it is cut and
 * EOS stays last, as Hugging Face truncation does. Invalid UTF-8 bytes become U+FFFD one byte
 * at a time, as in SentencePiece. */
int tok_encode(const tokenizer *t, const char *text, int add_eos, int max_len, int32_t *ids,
               int *n);
/* The same without truncation: *ids is malloc'ed (the caller frees it; NULL when *n is 0). */
int tok_encode_all(const tokenizer *t, const char *text, int add_eos, int32_t **ids, int *n);

int tok_vocab_size(const tokenizer *t);
const char *tok_piece(const tokenizer *t, int id); /* NULL when id is out of range */
int tok_eos_id(const tokenizer *t);                /* -1 when the model has no "</s>" piece */
int tok_pad_id(const tokenizer *t);                /* -1 when the model has no "<pad>" piece */
int tok_unk_id(const tokenizer *t);

/* Wan's prompt cleaning for T5 (clean='whitespace'): ftfy.fix_text, html.unescape twice, strip,
 * then every whitespace run becomes one space. ftfy is reproduced in part: see tok_clean.c for
 * which of its fixes are done. *out is malloc'ed. */
int tok_clean_prompt(const char *text, char **out);

#ifdef __cplusplus
}
#endif
#endif
