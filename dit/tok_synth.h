/* A synthetic SentencePiece unigram tokenizer as a Hugging Face tokenizer.json (specials,
 * U+2581, the printable ASCII characters with and without the word marker, byte fallback), for
 * benchmarks of the whole pipeline: any prompt tokenises, every id below 512. */
#ifndef REEL_TOK_SYNTH_H
#define REEL_TOK_SYNTH_H

#ifdef __cplusplus
extern "C" {
#endif

int tok_synth_write_json(const char *path);

#ifdef __cplusplus
}
#endif
#endif
