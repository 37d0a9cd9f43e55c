#!/usr/bin/env python3
"""An independent PyTorch implementation of the Wan2.1 DiT forward, written from
shared/specs/wan_dit.md (not from reel's code), used on the GPU machine two ways:

  ref_wan.py check MODEL.safetensors CONFIG.json INPUTS.safetensors OUT.safetensors
      one forward on the inputs `reel dit` reads (latent, timestep, context), in the precision
      map of the official code (bf16 linears/attention under autocast, fp32 norms, modulation,
      time embedding, head) and in plain fp32; writes `velocity_bf16` and `velocity_fp32`.

  ref_wan.py compare DIR
      DIR as tests/gpu/test_dit_cuda.c leaves it (REEL_DIT_REF_DIR): runs `check` on its model
      and inputs and prints `| op | shape | rel_l2 | tolerance |` rows for reel's CUDA and CPU
      outputs against the PyTorch bf16 and fp32 forwards; exits 1 past the tolerance.

  ref_wan.py bench [--frames 81 --width 832 --height 480]
      times the same forward for the 1.3B configuration with random bf16 weights, with cuDNN
      SDPA and with FlashAttention SDPA, and prints one JSON line.
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F


def sinusoid(freq_dim, t):
    half = freq_dim // 2
    w = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=t.device) / half)
    a = torch.outer(t.to(torch.float64), w)
    return torch.cat([torch.cos(a), torch.sin(a)], dim=1).float()


def rope_cos_sin(head_dim, f, h, w, device):
    pairs = head_dim // 2
    ph = pairs // 3
    pt = pairs - 2 * ph
    def axis(n_pairs, npos):
        theta = torch.pow(10000.0, -torch.arange(0, 2 * n_pairs, 2, dtype=torch.float64) / (2 * n_pairs))
        return torch.outer(torch.arange(npos, dtype=torch.float64), theta)
    at, ah, aw = axis(pt, f), axis(ph, h), axis(ph, w)
    ang = torch.cat([
        at[:, None, None, :].expand(f, h, w, pt),
        ah[None, :, None, :].expand(f, h, w, ph),
        aw[None, None, :, :].expand(f, h, w, ph)], dim=-1).reshape(f * h * w, pairs)
    return torch.cos(ang).to(device), torch.sin(ang).to(device)


def apply_rope(x, cos, sin):
    # x [L, heads, hd]; adjacent pairs (2j, 2j+1) rotate; math in float64 as the reference
    xd = x.double().reshape(x.shape[0], x.shape[1], -1, 2)
    a, b = xd[..., 0], xd[..., 1]
    c, s = cos[:, None, :], sin[:, None, :]
    out = torch.stack([a * c - b * s, a * s + b * c], dim=-1)
    return out.reshape(x.shape).float()


class WanRef:
    def __init__(self, sd, cfg, device):
        self.w = {k: v.to(device) for k, v in sd.items()}
        self.cfg = cfg
        self.device = device

    def lin(self, x, name, cdt):
        w = self.w[name + ".weight"]
        b = self.w[name + ".bias"]
        return F.linear(x.to(cdt), w.to(cdt), b.to(cdt))

    def rms(self, x, name, eps, cdt):
        # normalise in fp32, round to the input dtype, then the gain (WanRMSNorm)
        y = (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)
        return y.float() * self.w[name + ".weight"].float()

    def attention(self, q, k, v, heads, cdt, backend=None):
        L, D = q.shape
        hd = D // heads
        qh = q.reshape(L, heads, hd).transpose(0, 1)[None].to(cdt)
        kh = k.reshape(k.shape[0], heads, hd).transpose(0, 1)[None].to(cdt)
        vh = v.reshape(v.shape[0], heads, hd).transpose(0, 1)[None].to(cdt)
        if backend is not None:
            with torch.nn.attention.sdpa_kernel(backend):
                o = F.scaled_dot_product_attention(qh, kh, vh)
        else:
            o = F.scaled_dot_product_attention(qh, kh, vh)
        return o[0].transpose(0, 1).reshape(L, D)

    def forward(self, lat, t, ctx, cdt, sdpa=None):
        c = self.cfg
        D, heads, eps = c["dim"], c["heads"], c["eps"]
        C, Fr, H, W = lat.shape
        f, h, w = Fr, H // 2, W // 2
        L = f * h * w
        # patch embedding: (c, p_h, p_w) flattening, as a strided conv
        x = F.conv3d(lat[None].to(cdt), self.w["patch_embedding.weight"].to(cdt),
                     self.w["patch_embedding.bias"].to(cdt), stride=(1, 2, 2))
        x = x.flatten(2).transpose(1, 2)[0].float()
        # time (fp32)
        s = sinusoid(c["freq_dim"], t)
        e = F.linear(F.silu(F.linear(s, self.w["time_embedding.0.weight"].float(), self.w["time_embedding.0.bias"].float())),
                     self.w["time_embedding.2.weight"].float(), self.w["time_embedding.2.bias"].float())
        e0 = F.linear(F.silu(e), self.w["time_projection.1.weight"].float(), self.w["time_projection.1.bias"].float())
        G = e.shape[0]
        per = L // G
        e0 = e0.reshape(G, 6, D).repeat_interleave(per, dim=0)  # [L, 6, D]
        # text: pad to text_len with zeros, MLP in the compute dtype
        T = c["text_len"]
        cpad = torch.zeros(T, ctx.shape[1], device=ctx.device)
        cpad[: ctx.shape[0]] = ctx
        cemb = self.lin(F.gelu(self.lin(cpad, "text_embedding.0", cdt), approximate="tanh"), "text_embedding.2", cdt)
        cos, sin = rope_cos_sin(D // heads, f, h, w, lat.device)
        for i in range(c["layers"]):
            p = f"blocks.{i}."
            m = self.w[p + "modulation"].float()[0][None] + e0  # [L, 6, D]
            a = F.layer_norm(x, (D,), eps=eps) * (1 + m[:, 1]) + m[:, 0]
            q = self.lin(a, p + "self_attn.q", cdt)
            k = self.lin(a, p + "self_attn.k", cdt)
            v = self.lin(a, p + "self_attn.v", cdt)
            q = apply_rope(self.rms(q, p + "self_attn.norm_q", eps, cdt).reshape(L, heads, -1), cos, sin)
            k = apply_rope(self.rms(k, p + "self_attn.norm_k", eps, cdt).reshape(L, heads, -1), cos, sin)
            o = self.attention(q.reshape(L, D), k.reshape(L, D), v, heads, cdt, sdpa)
            x = x + self.lin(o, p + "self_attn.o", cdt).float() * m[:, 2]
            n3 = F.layer_norm(x, (D,), self.w[p + "norm3.weight"].float(), self.w[p + "norm3.bias"].float(), eps)
            q = self.rms(self.lin(n3, p + "cross_attn.q", cdt), p + "cross_attn.norm_q", eps, cdt)
            k = self.rms(self.lin(cemb, p + "cross_attn.k", cdt), p + "cross_attn.norm_k", eps, cdt)
            v = self.lin(cemb, p + "cross_attn.v", cdt)
            o = self.attention(q, k, v, heads, cdt, sdpa)
            x = x + self.lin(o, p + "cross_attn.o", cdt).float()
            b = F.layer_norm(x, (D,), eps=eps) * (1 + m[:, 4]) + m[:, 3]
            y = self.lin(F.gelu(self.lin(b, p + "ffn.0", cdt), approximate="tanh"), p + "ffn.2", cdt)
            x = x + y.float() * m[:, 5]
        hm = self.w["head.modulation"].float()[0]  # [2, D]
        eh = e.repeat_interleave(per, dim=0)
        hx = F.layer_norm(x, (D,), eps=eps) * (1 + hm[1] + eh) + hm[0] + eh
        o = F.linear(hx, self.w["head.head.weight"].float(), self.w["head.head.bias"].float())
        o = o.reshape(f, h, w, 1, 2, 2, c["out_dim"])
        o = torch.einsum("fhwpqrc->cfphqwr", o).reshape(c["out_dim"], f, 2 * h, 2 * w)
        return o


def config_from(sd, cfg_json):
    D = sd["patch_embedding.weight"].shape[0]
    layers = 0
    while f"blocks.{layers}.self_attn.q.weight" in sd:
        layers += 1
    heads = cfg_json.get("num_heads", D // 128)
    return dict(dim=D, heads=heads, layers=layers, eps=cfg_json.get("eps", 1e-6),
                freq_dim=sd["time_embedding.0.weight"].shape[1], text_len=cfg_json.get("text_len", 512),
                out_dim=sd["head.head.weight"].shape[0] // 4)


def check(model, cfg_path, inputs, out):
    from safetensors.torch import load_file, save_file
    sd = load_file(model)
    cfg = config_from(sd, json.load(open(cfg_path)))
    dev = "cuda"
    ref = WanRef(sd, cfg, dev)
    inp = load_file(inputs)
    lat, t, ctx = inp["latent"].float().to(dev), inp["timestep"].float().reshape(-1).to(dev), inp["context"].float().to(dev)
    with torch.no_grad():
        vb = ref.forward(lat, t, ctx, torch.bfloat16)
        vf = ref.forward(lat, t, ctx, torch.float32)
    save_file({"velocity_bf16": vb.contiguous().cpu(), "velocity_fp32": vf.contiguous().cpu()}, out)


def compare(d, tol=2e-2):
    from safetensors.torch import load_file
    check(f"{d}/diffusion_pytorch_model.safetensors", f"{d}/config.json", f"{d}/inputs.safetensors",
          f"{d}/pytorch.safetensors")
    ref = load_file(f"{d}/pytorch.safetensors")
    shape = "x".join(str(s) for s in ref["velocity_fp32"].shape)
    bad = 0
    def rel(a, b):
        a, b = a.double(), b.double()
        return float((a - b).norm() / b.norm())
    rows = [("pytorch bf16 vs pytorch fp32", ref["velocity_bf16"], ref["velocity_fp32"])]
    for who in ("cuda", "cpu"):
        mine = load_file(f"{d}/reel_{who}.safetensors")["velocity"]
        rows.append((f"reel {who} vs pytorch fp32", mine, ref["velocity_fp32"]))
        rows.append((f"reel {who} vs pytorch bf16", mine, ref["velocity_bf16"]))
    for name, a, b in rows:
        e = rel(a, b)
        bad += not (e <= tol)
        print(f"| dit {name} | [{shape}] 1.3B widths, 2 layers | {e:.3g} | {tol:g} |")
    sys.exit(1 if bad else 0)


def bench(frames=81, width=832, height=480):
    dev = "cuda"
    D, FF, heads, layers = 1536, 8960, 12, 30
    g = torch.Generator(device=dev).manual_seed(0)
    def r(*shape, scale=0.02):
        return (torch.randn(*shape, generator=g, device=dev) * scale).to(torch.bfloat16)
    sd = {"patch_embedding.weight": r(D, 16, 1, 2, 2), "patch_embedding.bias": r(D),
          "text_embedding.0.weight": r(D, 4096), "text_embedding.0.bias": r(D),
          "text_embedding.2.weight": r(D, D), "text_embedding.2.bias": r(D),
          "time_embedding.0.weight": r(D, 256), "time_embedding.0.bias": r(D),
          "time_embedding.2.weight": r(D, D), "time_embedding.2.bias": r(D),
          "time_projection.1.weight": r(6 * D, D), "time_projection.1.bias": r(6 * D),
          "head.head.weight": r(64, D), "head.head.bias": r(64), "head.modulation": r(1, 2, D)}
    for i in range(layers):
        p = f"blocks.{i}."
        sd[p + "modulation"] = r(1, 6, D)
        for a in ("self_attn", "cross_attn"):
            for n in "qkvo":
                sd[p + f"{a}.{n}.weight"] = r(D, D)
                sd[p + f"{a}.{n}.bias"] = r(D)
            sd[p + f"{a}.norm_q.weight"] = r(D) + 1
            sd[p + f"{a}.norm_k.weight"] = r(D) + 1
        sd[p + "norm3.weight"] = r(D) + 1
        sd[p + "norm3.bias"] = r(D)
        sd[p + "ffn.0.weight"], sd[p + "ffn.0.bias"] = r(FF, D), r(FF)
        sd[p + "ffn.2.weight"], sd[p + "ffn.2.bias"] = r(D, FF), r(D)
    cfg = dict(dim=D, heads=heads, layers=layers, eps=1e-6, freq_dim=256, text_len=512, out_dim=16)
    ref = WanRef(sd, cfg, dev)
    lat = torch.randn(16, (frames - 1) // 4 + 1, height // 8, width // 8, device=dev)
    t = torch.tensor([999.0], device=dev)
    ctx = torch.randn(512, 4096, device=dev)
    out = {"bench": "pytorch_reference_dit", "frames": frames, "width": width, "height": height,
           "tokens": lat.shape[1] * lat.shape[2] * lat.shape[3] // 4}
    from torch.nn.attention import SDPBackend
    for name, be in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)):
        with torch.no_grad():
            ref.forward(lat, t, ctx, torch.bfloat16, be)
            torch.cuda.synchronize()
            times = []
            for _ in range(2):
                t0 = time.perf_counter()
                ref.forward(lat, t, ctx, torch.bfloat16, be)
                torch.cuda.synchronize()
                times.append((time.perf_counter() - t0) * 1e3)
        out[f"forward_ms_{name}"] = round(min(times), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check(*sys.argv[2:6])
    elif sys.argv[1] == "compare":
        compare(sys.argv[2])
    elif sys.argv[1] == "bench":
        bench()
    else:
        sys.exit(__doc__)
