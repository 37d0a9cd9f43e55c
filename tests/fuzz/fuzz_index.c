/* libFuzzer harness: the *.safetensors.index.json parser on arbitrary text. Every tensor it
 * accepts must name a shard it listed. */
#include "dit/safetensors.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1); /* the file reader NUL-terminates what it read */
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    st_index ix;
    if (st_index_parse("fuzz.index.json", text, size, &ix) == 0) {
        for (int i = 0; i < ix.n; i++)
            if (ix.shard[i] < 0 || ix.shard[i] >= ix.nshards || !ix.names[i])
                __builtin_trap();
        st_index_free(&ix);
    }
    free(text);
    return 0;
}
