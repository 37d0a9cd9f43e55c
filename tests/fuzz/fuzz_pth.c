/* libFuzzer harness: the whole PyTorch checkpoint reader (zip directory, restricted unpickler,
 * tensor views) on arbitrary bytes; seed it with checkpoints (tw_write_pth output, torch.save
 * files). Every tensor view it accepts must lie inside the input. */
#include "dit/loader.h"
#include "dit/pth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ld_list l = {0};
    if (pth_parse("fuzz.pth", data, size, &l) == 0)
        for (int i = 0; i < l.n; i++)
            if (l.v[i].offset > size || l.v[i].nbytes > size - l.v[i].offset)
                __builtin_trap();
    ld_list_free(&l);
    return 0;
}
