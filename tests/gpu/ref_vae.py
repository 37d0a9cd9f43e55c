#!/usr/bin/env python3
"""PyTorch reference for reel's Wan VAE: the math of Wan-Video/Wan2.1 wan/modules/vae.py
(CausalConv3d, RMS_norm, ResidualBlock, AttentionBlock, Resample with time_conv and its
'Rep' first chunk, Encoder3d/Decoder3d, WanVAE_.encode/decode with the per-chunk loop and
CACHE_T = 2), written here as plain functions over a state dict in the original layout.

  ref_vae.py compare --model M.safetensors --latents L --video V [--video V2 ...]
      decode latents 'latents' in fp32 and print rel L2 of each reel output 'video'
  ref_vae.py compare-encode --model M --video-in V --latents L [--latents L2 ...]
  ref_vae.py time --model M --shape 21x60x104 [--dtype bf16]
      time one decode at that latent shape (median of 3 after a warm-up), peak memory

Reads and writes safetensors itself (json header + raw data), so only torch is needed."""
import argparse
import json
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

CACHE_T = 2
MEAN = [-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
        0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921]
STD = [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
       3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160]


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = np.frombuffer(data[b:e], dtype=np.uint8)
        dt = info["dtype"]
        if dt == "F32":
            a = raw.view(np.float32)
        elif dt == "BF16":
            a = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dt == "F16":
            a = raw.view(np.float16).astype(np.float32)
        else:
            raise SystemExit(f"{path}: {name}: dtype {dt} not handled")
        out[name] = torch.from_numpy(a.copy()).reshape(info["shape"])
    return out


def strip_prefix(sd):
    for k in sd:
        if k.endswith("decoder.conv1.weight"):
            p = k[: -len("decoder.conv1.weight")]
            return {key[len(p):]: v for key, v in sd.items() if key.startswith(p)}
    raise SystemExit("not a Wan VAE in the original layout (no decoder.conv1.weight)")


class Cache:
    """feat_cache / feat_idx of the reference: one slot per cached convolution."""

    def __init__(self):
        self.map = {}
        self.idx = 0


class WanVae:
    def __init__(self, sd, dtype, device):
        self.w = {k: v.to(device=device, dtype=dtype) for k, v in strip_prefix(sd).items()}
        self.z = self.w["conv2.weight"].shape[0]
        self.dtype, self.device = dtype, device

    def has(self, k):
        return k in self.w

    # CausalConv3d: padding (pt, ph, pw) becomes (pw, pw, ph, ph, 2 pt, 0); a cache replaces
    # as many zero frames in front.
    def causal_conv(self, x, name, pad, stride=1, cache=None):
        pt, ph, pw = pad
        front = 2 * pt
        if cache is not None and front > 0:
            x = torch.cat([cache, x], 2)
            front -= cache.shape[2]
        x = F.pad(x, (pw, pw, ph, ph, front, 0))
        return F.conv3d(x, self.w[name + ".weight"], self.w[name + ".bias"], stride)

    def cached(self, x, name, fc, pad=(1, 1, 1)):
        idx = fc.idx
        cache_x = x[:, :, -CACHE_T:].clone()
        prev = fc.map.get(idx)
        if cache_x.shape[2] < 2 and prev is not None:
            cache_x = torch.cat([prev[:, :, -1:], cache_x], 2)
        x = self.causal_conv(x, name, pad, cache=prev)
        fc.map[idx] = cache_x
        fc.idx += 1
        return x

    def rms(self, x, gamma):
        return F.normalize(x, dim=1) * (x.shape[1] ** 0.5) * self.w[gamma]

    def res(self, x, p, fc):
        h = self.causal_conv(x, p + ".shortcut", (0, 0, 0)) if self.has(p + ".shortcut.weight") else x
        x = F.silu(self.rms(x, p + ".residual.0.gamma"))
        x = self.cached(x, p + ".residual.2", fc)
        x = F.silu(self.rms(x, p + ".residual.3.gamma"))
        x = self.cached(x, p + ".residual.6", fc)
        return x + h

    def attn(self, x, p):
        identity = x
        b, c, t, h, w = x.shape
        x = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        x = self.rms(x, p + ".norm.gamma")
        qkv = F.conv2d(x, self.w[p + ".to_qkv.weight"], self.w[p + ".to_qkv.bias"])
        q, k, v = qkv.reshape(b * t, 1, c * 3, -1).permute(0, 1, 3, 2).contiguous().chunk(3, dim=-1)
        if hasattr(F, "scaled_dot_product_attention"):
            x = F.scaled_dot_product_attention(q, k, v)
        else:  # torch < 2.0: the same single-head attention, scale 1/sqrt(c)
            x = torch.softmax(q @ k.transpose(-1, -2) / c ** 0.5, dim=-1) @ v
        x = x.squeeze(1).permute(0, 2, 1).reshape(b * t, c, h, w)
        x = F.conv2d(x, self.w[p + ".proj.weight"], self.w[p + ".proj.bias"])
        return x.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4) + identity

    def upsample(self, x, p, fc):
        b, c, t, h, w = x.shape
        if self.has(p + ".time_conv.weight"):
            idx = fc.idx
            prev = fc.map.get(idx)
            if prev is None:
                fc.map[idx] = "Rep"
                fc.idx += 1
            else:
                rep = isinstance(prev, str)
                cache_x = x[:, :, -CACHE_T:].clone()
                if cache_x.shape[2] < 2 and not rep:
                    cache_x = torch.cat([prev[:, :, -1:], cache_x], 2)
                if cache_x.shape[2] < 2 and rep:
                    cache_x = torch.cat([torch.zeros_like(cache_x), cache_x], 2)
                x = self.causal_conv(x, p + ".time_conv", (1, 0, 0), cache=None if rep else prev)
                fc.map[idx] = cache_x
                fc.idx += 1
                x = x.reshape(b, 2, c, t, h, w)
                x = torch.stack((x[:, 0], x[:, 1]), 3).reshape(b, c, t * 2, h, w)
        t = x.shape[2]
        x = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        x = F.interpolate(x.float(), scale_factor=2.0, mode="nearest-exact").to(x.dtype)
        x = F.conv2d(x, self.w[p + ".resample.1.weight"], self.w[p + ".resample.1.bias"], padding=1)
        return x.reshape(b, t, x.shape[1], 2 * h, 2 * w).permute(0, 2, 1, 3, 4)

    def downsample(self, x, p, fc):
        b, c, t, h, w = x.shape
        x = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        x = F.conv2d(F.pad(x, (0, 1, 0, 1)), self.w[p + ".resample.1.weight"],
                     self.w[p + ".resample.1.bias"], stride=2)
        x = x.reshape(b, t, c, x.shape[2], x.shape[3]).permute(0, 2, 1, 3, 4)
        if self.has(p + ".time_conv.weight"):
            idx = fc.idx
            prev = fc.map.get(idx)
            if prev is None:
                fc.map[idx] = x.clone()
                fc.idx += 1
            else:
                cache_x = x[:, :, -1:].clone()
                x = self.causal_conv(torch.cat([prev[:, :, -1:], x], 2), p + ".time_conv",
                                     (0, 0, 0), stride=(2, 1, 1))
                fc.map[idx] = cache_x
                fc.idx += 1
        return x

    def blocks(self, x, side, fc, up):
        x = self.cached(x, side + ".conv1", fc)
        if side == "encoder":
            x = self.stack(x, side + ".downsamples", fc, up)
        x = self.res(x, side + ".middle.0", fc)
        x = self.attn(x, side + ".middle.1")
        x = self.res(x, side + ".middle.2", fc)
        if side == "decoder":
            x = self.stack(x, side + ".upsamples", fc, up)
        x = F.silu(self.rms(x, side + ".head.0.gamma"))
        return self.cached(x, side + ".head.2", fc)

    def stack(self, x, prefix, fc, up):
        i = 0
        while True:
            p = f"{prefix}.{i}"
            if self.has(p + ".residual.0.gamma"):
                x = self.res(x, p, fc)
            elif self.has(p + ".to_qkv.weight"):
                x = self.attn(x, p)
            elif self.has(p + ".resample.1.weight"):
                x = self.upsample(x, p, fc) if up else self.downsample(x, p, fc)
            else:
                return x
            i += 1

    @torch.no_grad()
    def decode(self, z):
        mean = torch.tensor(MEAN, device=self.device, dtype=self.dtype).view(1, -1, 1, 1, 1)
        inv = 1.0 / torch.tensor(STD, device=self.device, dtype=self.dtype).view(1, -1, 1, 1, 1)
        z = z.to(self.device, self.dtype).unsqueeze(0) / inv + mean
        x = self.causal_conv(z, "conv2", (0, 0, 0))
        fc, out = Cache(), []
        for i in range(x.shape[2]):
            fc.idx = 0
            out.append(self.blocks(x[:, :, i:i + 1], "decoder", fc, True))
        return torch.cat(out, 2).float().clamp_(-1, 1).squeeze(0)

    @torch.no_grad()
    def encode(self, video):
        x = video.to(self.device, self.dtype).unsqueeze(0)
        fc, out = Cache(), []
        for i in range(1 + (x.shape[2] - 1) // 4):
            fc.idx = 0
            chunk = x[:, :, :1] if i == 0 else x[:, :, 1 + 4 * (i - 1):1 + 4 * i]
            out.append(self.blocks(chunk, "encoder", fc, False))
        mu = self.causal_conv(torch.cat(out, 2), "conv1", (0, 0, 0))[:, : self.z]
        mean = torch.tensor(MEAN, device=self.device, dtype=self.dtype).view(1, -1, 1, 1, 1)
        inv = 1.0 / torch.tensor(STD, device=self.device, dtype=self.dtype).view(1, -1, 1, 1, 1)
        return ((mu - mean) * inv).float().squeeze(0)


def rel_l2(a, ref):
    a, ref = a.double().cpu(), ref.double().cpu()
    return float((a - ref).norm() / ref.norm())


def row(op, shape, err, tol, ms):
    print(f"| {op:<34} | {shape:<22} | {err:9.2e} | {tol:7.0e} | {ms:9.1f} ms |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["compare", "compare-encode", "time"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--latents", action="append", default=[])
    ap.add_argument("--video", action="append", default=[])
    ap.add_argument("--video-in")
    ap.add_argument("--shape", default="21x60x104")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--tol", type=float, default=2e-2)
    a = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    vae = WanVae(read_safetensors(a.model), dtype, device)
    bad = 0
    if a.mode == "compare":
        z = read_safetensors(a.latents[0])["latents"]
        t0 = time.time()
        ref = vae.decode(z)
        ms = (time.time() - t0) * 1e3
        for path in a.video:
            got = read_safetensors(path)["video"]
            e = rel_l2(got, ref)
            row(f"torch {a.dtype} vs {path.split('/')[-1]}", str(list(z.shape)), e, a.tol, ms)
            bad += not e <= a.tol
    elif a.mode == "compare-encode":
        v = read_safetensors(a.video_in)["video"]
        t0 = time.time()
        ref = vae.encode(v)
        ms = (time.time() - t0) * 1e3
        for path in a.latents:
            got = read_safetensors(path)["latents"]
            e = rel_l2(got, ref)
            row(f"torch {a.dtype} enc vs {path.split('/')[-1]}", str(list(v.shape)), e, a.tol, ms)
            bad += not e <= a.tol
    else:
        T, h, w = (int(s) for s in a.shape.split("x"))
        z = torch.randn(16, T, h, w)
        times = []
        for i in range(4):
            if device == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t0 = time.time()
            out = vae.decode(z)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append((time.time() - t0) * 1e3)
            del out
        peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else 0
        med = sorted(times[1:])[1]
        print(f"| torch {a.dtype} decode (this script)      | [16,{T},{h},{w}]        | "
              f"{'-':>9} | {'-':>7} | {med:9.1f} ms | warm-up {times[0]:.0f} ms, peak allocated "
              f"{peak:.2f} GiB")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
