/* Progress on a terminal: one self-updating line per stage with step i/n, rate and ETA; plain
 * lines (one per step, or per chunk while decoding) when stderr is not a terminal. */
#ifndef REEL_PROGRESS_H
#define REEL_PROGRESS_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct progress_printer {
    FILE *f;
    int tty, quiet;
    char stage[16];
    double stage_start, last_print;
    int open_line; /* a \r line is on screen and needs its newline */
} progress_printer;

void progress_init(progress_printer *p, FILE *f, int quiet);
/* Call with every event; always returns 0 (never cancels). */
int progress_update(progress_printer *p, const char *stage, int done, int total);
void progress_end(progress_printer *p);

#ifdef __cplusplus
}
#endif
#endif
