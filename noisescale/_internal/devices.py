"""The one resolution of ``device=`` arguments, for the thinning kernels, torch models and FAISS.

``"cpu"`` is always possible. ``"cuda"`` either can be honoured or raises a RuntimeError that
says why (noisescale built without CUDA, no GPU visible, torch or faiss without GPU support);
it never falls back to the CPU silently. ``"auto"`` picks the GPU when the backend can use
one and the CPU otherwise; :func:`choices` (shown by ``build_info()`` and
``show_config()``, recorded in a sweep's provenance) says what it picks on this machine.
"""

from __future__ import annotations

from typing import Literal

DEVICES = ("auto", "cpu", "cuda")
Backend = Literal["thinning", "torch", "faiss"]


def check_device(device: object) -> str:
    """Validate a ``device=`` string (without resolving it)."""
    if device not in DEVICES:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    return str(device)


def _cuda_problem(backend: Backend) -> str | None:
    """Why torch or faiss cannot use a GPU here (None when it can)."""
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            built = torch.version.cuda is not None
            return ("torch sees no CUDA device" if built
                    else f"this torch ({torch.__version__}) is a CPU-only build")
        return None
    if backend == "faiss":
        import faiss

        if not hasattr(faiss, "StandardGpuResources"):
            return "this faiss is a CPU-only build (install faiss-gpu)"
        if faiss.get_num_gpus() == 0:
            return "faiss sees no GPU"
        return None
    raise ValueError(f"unknown backend {backend!r}")


def resolve_device(device: object, backend: Backend) -> str:
    """``"cpu"`` or ``"cuda"``: what ``device`` means for ``backend`` on this machine."""
    device = check_device(device)
    if backend == "thinning":  # the compiled core reads its own device= (_core.resolve_device)
        from .. import _core

        return str(_core.resolve_device(device))
    if device == "cpu":
        return "cpu"
    problem = _cuda_problem(backend)
    if device == "cuda" and problem is not None:
        raise RuntimeError(f"device='cuda' for {backend}, but {problem}")
    return "cpu" if problem is not None else "cuda"


def torch_device(device: object):
    """:func:`resolve_device` for torch, as a ``torch.device``."""
    import torch

    return torch.device(resolve_device(device, "torch"))


def choices() -> dict[str, str]:
    """What ``device="auto"`` resolves to for each backend; a backend that cannot be imported
    is reported as such."""
    out = {}
    for backend in ("thinning", "torch", "faiss"):
        try:
            out[backend] = resolve_device("auto", backend)  # type: ignore[arg-type]
        except ImportError as e:
            out[backend] = f"unavailable ({e.name or e})"
    return out
