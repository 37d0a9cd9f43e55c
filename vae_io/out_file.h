/* Output files that appear only when complete.
 *
 * Everything reel writes goes to a hidden temporary beside the final name
 * ("dir/.clip.mp4.<pid>-<n>.tmp"), is fsync'ed and closed with every result checked, and is then
 * renamed into place. A failed or interrupted run therefore never leaves a truncated output, and
 * an existing file is replaced only when the caller allowed it: without overwrite the final step
 * is link(2), which refuses atomically if the name appeared in the meantime.
 * The path "-" is standard output: written directly, never renamed, never a terminal. */
#ifndef REEL_OUT_FILE_H
#define REEL_OUT_FILE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct out_file out_file;

/* REEL_E_EXISTS when path exists and overwrite is 0 (checked early so that a long generation
 * does not start for nothing); REEL_E_INVALID when path is a folder. */
int out_file_check_target(const char *path, int overwrite);

/* Checks the target, then creates the temporary. REEL_E_IO names path and the reason when the
 * folder is missing or not writable; REEL_E_INVALID when "-" is a terminal. */
int out_file_open(const char *path, int overwrite, out_file **out);

/* Writes all n bytes or fails with REEL_E_IO naming the path and errno's text (a full disk
 * included). The first failure is remembered: see out_file_failed. */
int out_file_write(out_file *f, const void *buf, size_t n);

/* lseek on the temporary (containers that patch their header at the end need it); *pos gets the
 * new offset. REEL_E_UNSUPPORTED on standard output. */
int out_file_seek(out_file *f, int64_t offset, int whence, int64_t *pos);
int out_file_size(out_file *f, int64_t *size);

/* Status of the first failed write or seek (0 when none): lets a caller whose own library
 * reported a generic error keep the message that names the real cause. */
int out_file_failed(const out_file *f);

/* fsync and close the temporary, keeping it under its temporary name: used when several files
 * must all be complete before any of them is published (a PNG sequence). */
int out_file_finish(out_file *f);

/* Finishes (when not yet done) and renames into place; frees f whatever the result, removing the
 * temporary on failure. */
int out_file_commit(out_file *f);

/* Closes and removes the temporary; frees f. NULL is accepted. */
void out_file_discard(out_file *f);

const char *out_file_path(const out_file *f);     /* the final name, as given */
const char *out_file_tmp_path(const out_file *f); /* the temporary ("-" for stdout) */

/* Folders of outputs (PNG sequences): creates dir when missing (one level) and says whether it
 * did, so that a failed run can remove the folder it made and nothing else. */
int out_dir_prepare(const char *dir, int *created);
void out_dir_unprepare(const char *dir, int created);

#ifdef __cplusplus
}
#endif
#endif
