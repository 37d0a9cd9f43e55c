/* Plugin options: "key=value,key=value" checked against a plugin's option table (the same
 * table `reel attn list` prints), so every plugin rejects a misspelt key the same way. */
#ifndef REEL_ATTN_OPTIONS_H
#define REEL_ATTN_OPTIONS_H

#include "../plugin/reel_attention.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATTN_OPTS_MAX 16

typedef struct attn_opts {
    int n;
    struct {
        char key[48];
        char value[80];
    } kv[ATTN_OPTS_MAX];
} attn_opts;

/* Parses s (NULL or "" means no options). A key not in known, a key given twice, an item
 * without '=' or longer than the fields above gives REEL_E_INVALID with a message in err that
 * names the item and lists the known keys. */
int attn_opts_parse(const char *s, const reel_attn_option *known, attn_opts *out, char *err,
                    size_t err_size);

/* The value given for key, else its default from known; NULL when key is not in known. */
const char *attn_opts_value(const attn_opts *o, const reel_attn_option *known, const char *key);

/* Typed reads of attn_opts_value within [lo, hi]; REEL_E_INVALID naming key and value. */
int attn_opts_int(const attn_opts *o, const reel_attn_option *known, const char *key, long lo,
                  long hi, long *v, char *err, size_t err_size);
int attn_opts_double(const attn_opts *o, const reel_attn_option *known, const char *key,
                     double lo, double hi, double *v, char *err, size_t err_size);

/* "a, b, c" of the known option names into buf (for messages); returns buf. */
const char *attn_opts_names(const reel_attn_option *known, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
