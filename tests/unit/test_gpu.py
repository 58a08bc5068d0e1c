"""GPU detection from nvidia-smi's CSV, as `rag doctor` and the GPU tests use it."""

from __future__ import annotations

import shutil

from rag_app.serving.gpu import Gpu, detect_gpus, parse_nvidia_smi

# `nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader,nounits`
# on a two-GPU host, with the warning line some drivers print first
TWO_GPUS = """WARNING: infoROM is corrupted at gpu 0000:00:04.0
0, NVIDIA H100 80GB HBM3, 81559, 570.86.15
1, NVIDIA H100 80GB HBM3, 81559, 570.86.15
"""


def test_device_rows_are_parsed_and_other_lines_ignored() -> None:
    assert parse_nvidia_smi(TWO_GPUS) == [
        Gpu(0, "NVIDIA H100 80GB HBM3", 81559, "570.86.15"),
        Gpu(1, "NVIDIA H100 80GB HBM3", 81559, "570.86.15"),
    ]
    assert parse_nvidia_smi("") == []
    assert parse_nvidia_smi("No devices were found\n") == []


def test_detect_says_why_there_is_no_gpu() -> None:
    gpus, why = detect_gpus()
    if shutil.which("nvidia-smi") is None:
        assert gpus == [] and "nvidia-smi" in why
    else:
        assert bool(gpus) != bool(why)  # devices, or the reason there are none
