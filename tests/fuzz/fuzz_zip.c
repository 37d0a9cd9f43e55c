/* libFuzzer harness: the zip directory reader on arbitrary bytes. Every entry it accepts must
 * lie inside the input and be found again by name. */
#include "dit/zip.h"

#include <stddef.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zip_archive z;
    if (zip_read("fuzz.zip", data, size, &z) != 0)
        return 0;
    for (int i = 0; i < z.n; i++) {
        const zip_entry *e = &z.entries[i];
        if (e->data_offset > size || e->size > size - e->data_offset ||
            (const uint8_t *)e->name < data || (const uint8_t *)e->name + e->name_len > data + size ||
            zip_find(&z, e->name, e->name_len) == NULL)
            __builtin_trap();
    }
    zip_free(&z);
    return 0;
}
