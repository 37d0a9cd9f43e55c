/* libFuzzer harness: the safetensors header parser on arbitrary bytes. Beyond what the
 * sanitizers catch, every tensor it accepts must lie inside the input. */
#include "dit/loader.h"
#include "dit/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ld_list l = {0};
    if (st_parse("fuzz.safetensors", data, size, &l) == 0)
        for (int i = 0; i < l.n; i++)
            if (l.v[i].offset > size || l.v[i].nbytes > size - l.v[i].offset)
                __builtin_trap();
    ld_list_free(&l);
    return 0;
}
