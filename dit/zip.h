/* The central directory of a zip archive held in memory, as torch.save writes it (PyTorch's
 * miniz: stored entries, data descriptors, zip64 end records, local headers padded with an "FB"
 * extra field so each payload starts on a 64-byte boundary).
 * Only what reading stored payloads in place needs: entry names and the byte range of each
 * payload. Compressed or encrypted entries and multi-disk archives are refused; the central
 * directory must agree with every local header, and payloads may not overlap each other or the
 * directory. CRCs are not checked. */
#ifndef REEL_ZIP_H
#define REEL_ZIP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zip_entry {
    const char *name;     /* points into the archive; not NUL-terminated */
    uint32_t name_len;
    uint64_t data_offset; /* first payload byte, from the start of the archive */
    uint64_t size;
} zip_entry;

typedef struct zip_archive {
    zip_entry *entries; /* in central directory order */
    int n;
    zip_entry *sorted;  /* the same entries sorted by name, for zip_find */
} zip_archive;

#define ZIP_MAX_ENTRIES (1 << 20)

/* Reads the directory of the archive at data[0..size). Messages name `path`. */
int zip_read(const char *path, const uint8_t *data, uint64_t size, zip_archive *out);
void zip_free(zip_archive *z);

/* The entry with exactly this name, or NULL. */
const zip_entry *zip_find(const zip_archive *z, const char *name, uint32_t name_len);

#ifdef __cplusplus
}
#endif
#endif
