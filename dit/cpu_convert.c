/* Host dtype conversion for copies: checkpoints hold f32, f16, bf16, f8 or f64; the backends
 * compute in f32 and store bf16/f16. Rounding is numeric.h's (to nearest even, as PyTorch);
 * f64 values go through f32 first. */
#include "cpu_ops.h"

#include "error.h"
#include "numeric.h"

#include <string.h>

static float load_f32(const void *src, enum dtype dt, int64_t i)
{
    switch (dt) {
    case DT_F32: return ((const float *)src)[i];
    case DT_F16: return f16_to_f32(((const uint16_t *)src)[i]);
    case DT_BF16: return bf16_to_f32(((const uint16_t *)src)[i]);
    case DT_F8_E4M3: return f8e4m3_to_f32(((const uint8_t *)src)[i]);
    case DT_F8_E5M2: return f8e5m2_to_f32(((const uint8_t *)src)[i]);
    default: return (float)((const double *)src)[i]; /* DT_F64: callers admit nothing else */
    }
}

int cpu_convert(const void *src, enum dtype sdt, void *dst, enum dtype ddt, int64_t n)
{
    if (sdt == ddt) {
        memcpy(dst, src, (size_t)n * dtype_size(sdt));
        return REEL_OK;
    }
    bool src_ok = sdt == DT_F32 || sdt == DT_F16 || sdt == DT_BF16 || sdt == DT_F8_E4M3 ||
                  sdt == DT_F8_E5M2 || sdt == DT_F64;
    bool dst_ok = ddt == DT_F32 || ddt == DT_F16 || ddt == DT_BF16;
    if (!src_ok || !dst_ok)
        return err_set(REEL_E_UNSUPPORTED, "copy: no conversion from %s to %s (float formats "
                       "f32/f16/bf16/f8/f64 convert to f32/f16/bf16)", dtype_name(sdt),
                       dtype_name(ddt));
    if (ddt == DT_F32) {
        float *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = load_f32(src, sdt, i);
    } else if (ddt == DT_BF16) {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = f32_to_bf16(load_f32(src, sdt, i));
    } else {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = f32_to_f16(load_f32(src, sdt, i));
    }
    return REEL_OK;
}
