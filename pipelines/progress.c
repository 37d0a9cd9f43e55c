#include "progress.h"
#include "../dit/clock.h"

#include <string.h>
#include <unistd.h>

void progress_init(progress_printer *p, FILE *f, int quiet)
{
    memset(p, 0, sizeof *p);
    p->f = f;
    p->quiet = quiet;
    p->tty = isatty(fileno(f));
}

void progress_end(progress_printer *p)
{
    if (p->open_line)
        fputc('\n', p->f);
    p->open_line = 0;
    fflush(p->f);
}

int progress_update(progress_printer *p, const char *stage, int done, int total)
{
    if (p->quiet)
        return 0;
    double t = clock_s();
    if (strncmp(p->stage, stage, sizeof p->stage) != 0) {
        progress_end(p);
        snprintf(p->stage, sizeof p->stage, "%s", stage);
        p->stage_start = t;
    }
    double el = t - p->stage_start;
    double rate = done > 0 && el > 0 ? done / el : 0;
    double eta = rate > 0 ? (total - done) / rate : 0;
    char line[160];
    if (total > 0 && done > 0)
        snprintf(line, sizeof line, "[%s] %d/%d  %.2f %s/s  elapsed %d:%02d  ETA %d:%02d", stage,
                 done, total, rate, strcmp(stage, "decode") ? "it" : "frames", (int)el / 60,
                 (int)el % 60, (int)eta / 60, (int)eta % 60);
    else
        snprintf(line, sizeof line, "[%s] %d/%d", stage, done, total);
    if (p->tty) {
        /* redraw at most 10 times a second, and always the final state */
        if (done < total && t - p->last_print < 0.1 && done > 0)
            return 0;
        fprintf(p->f, "\r%-78s", line);
        p->open_line = 1;
        if (done >= total)
            progress_end(p);
    } else {
        fprintf(p->f, "%s\n", line);
    }
    p->last_print = t;
    fflush(p->f);
    return 0;
}
