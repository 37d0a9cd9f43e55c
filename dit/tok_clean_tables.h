/* Data tables of the prompt cleaning, generated from Python by
 * tests/tokenizer/gen_clean_tables.py (tok_clean_tables.c). */
#ifndef REEL_TOK_CLEAN_TABLES_H
#define REEL_TOK_CLEAN_TABLES_H

#include <stdint.h>

typedef struct tok_entity {
    const char *name;  /* as written after '&', with its ';' when it has one */
    const char *value; /* UTF-8 */
} tok_entity;

typedef struct tok_width {
    uint32_t cp;
    const char *value; /* UTF-8 */
} tok_width;

/* html.entities.html5, sorted by name bytes. */
extern const tok_entity tok_html5_entities[];
extern const int tok_html5_entities_count;
/* ftfy's extra upper-case names ("NTILDE;" -> "Ñ"), sorted by name bytes. */
extern const tok_entity tok_ftfy_upper_entities[];
extern const int tok_ftfy_upper_entities_count;
/* ftfy's fix_character_width, sorted by code point. */
extern const tok_width tok_width_map[];
extern const int tok_width_map_count;

#endif
