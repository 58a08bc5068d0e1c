"""Make this machine look AVX2-only to vLLM's CPU backend: benchmarks only, never shipped.

vLLM picks its kernels (`_C_AVX2` vs `_C_AVX512`, the attention ISA, AMX paths) from
`torch.cpu._is_*_supported()`; this hides AVX-512 and AMX from them in every Python process
started with this folder on PYTHONPATH (the vLLM server and its engine process inherit it).
With ATEN_CPU_CAPABILITY=avx2 and ONEDNN_MAX_CPU_ISA=AVX2, torch's own kernels follow:

    EMULATE_AVX2=1 PYTHONPATH=bench/emulate_avx2 ATEN_CPU_CAPABILITY=avx2 \\
    ONEDNN_MAX_CPU_ISA=AVX2 python -m bench.serve --dtypes float32 --preset P --users 1,4
"""

import os

if os.environ.get("EMULATE_AVX2") == "1":
    import torch.cpu

    for name in ("avx512", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_fp16"):
        setattr(torch.cpu, f"_is_{name}_supported", lambda: False)
