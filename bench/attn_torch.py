"""PyTorch SDPA at the shapes of `reel bench attn`, for the side-by-side numbers in
bench/RESULTS.md: cuDNN attention and FlashAttention-2 backends, bf16, head_dim 128, q/k/v as
[1, heads, tokens, 128] views of a token-major fused QKV buffer (the DiT's layout) and as
contiguous tensors. Median of --reps CUDA-event timings after a warm-up.
usage: python3 bench/attn_torch.py [--reps 10] [--shape 1.3b|14b|all]"""
import argparse

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
import torch.nn.functional as F

SHAPES = {"1.3b": ("wan1.3b-480p-81f", 12, 21 * 30 * 52), "14b": ("wan14b-720p-81f", 40, 21 * 45 * 80)}
BACKENDS = [("torch cudnn", SDPBackend.CUDNN_ATTENTION), ("torch flash", SDPBackend.FLASH_ATTENTION)]


def median_ms(fn, reps):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--shape", default="all", choices=["1.3b", "14b", "all"])
    args = ap.parse_args()
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"cudnn {torch.backends.cudnn.version()}")
    print("| shape | kernel | layout | heads x tokens | ms | TFLOP/s |\n|---|---|---|---|---|---|")
    for key in (["1.3b", "14b"] if args.shape == "all" else [args.shape]):
        name, heads, tokens = SHAPES[key]
        g = torch.Generator(device="cuda").manual_seed(0)
        qkv = torch.randn(tokens, 3, heads, 128, device="cuda", dtype=torch.bfloat16, generator=g)
        fused = [qkv[:, i].unsqueeze(0).transpose(1, 2) for i in range(3)]  # [1, H, L, D] views
        packed = [t.contiguous() for t in fused]
        flops = 4.0 * tokens * tokens * 128 * heads
        for label, backend in BACKENDS:
            for layout, (q, k, v) in (("fused", fused), ("contiguous", packed)):
                try:
                    with sdpa_kernel(backend):
                        ms = median_ms(lambda: F.scaled_dot_product_attention(q, k, v), args.reps)
                    print(f"| {name} | {label} | {layout} | {heads} x {tokens} | {ms:.3f} | "
                          f"{flops / ms / 1e9:.1f} |", flush=True)
                except RuntimeError as e:
                    print(f"| {name} | {label} | {layout} | {heads} x {tokens} | failed: "
                          f"{str(e).splitlines()[0][:80]} | |", flush=True)
        del qkv, fused, packed
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
