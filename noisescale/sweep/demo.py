"""``noisescale demo``: a small complete sweep on a simulated CITE-seq-like dataset."""

from __future__ import annotations

import os
from pathlib import Path

from .config import SweepConfig, load_config

#: The simulated dataset: 3,000 cells of 6 types with 3 continuous programs, 2,000 UMIs per
#: cell on average over 3,000 genes, and a 12-protein panel.
DEMO_DATA = dict(n_cells=3000, n_genes=3000, n_types=6, n_programs=3, mean_umis=2000.0,
                 n_proteins=12, seed=0)

_CONFIG = """\
# The noisescale demo: written by `noisescale demo`; run it again with `noisescale run {name}`.
[dataset]
path = "demo_cells.h5ad"
name = "simulated"

[split]
test_fraction = 0.25
stratify = "cell_type"

[sweep]
fractions = {fractions}
n_cells = [500, 1000, "all"]
seeds = [0, 1]

[[models]]
name = "pca"

[[models]]
name = "random_projection"
{vae}
[[signals]]
name = "cell type"
kind = "categorical"
column = "cell_type"
estimator = "ross"  # the demo stays fast: "auto" would train LMI on 16-dim embeddings

[[signals]]
name = "protein"
kind = "continuous"
key = "protein"
estimator = "ksg"

[[signals]]
name = "time"
kind = "time"
column = "time"
estimator = "ksg"

[run]
output = "."
workers = {workers}
"""

_VAE = """
[[models]]
name = "vae"
epochs = 25
n_hidden = 64
n_top_genes = 1000
"""


def demo_config(output: str | os.PathLike = "noisescale-demo", *, quick: bool = False,
                workers: int = 0, progress: bool = False) -> SweepConfig:
    """Make the demo's dataset (once) and configuration in ``output``; return the config."""
    from ..simulate import simulate_file

    out = Path(output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = out / "demo_cells.h5ad"
    if not data.exists():
        params = {k: v for k, v in DEMO_DATA.items() if k not in ("n_cells", "n_genes")}
        simulate_file(data, DEMO_DATA["n_cells"], DEMO_DATA["n_genes"], progress=progress,
                      **params)
    fractions = [1.0, 0.5, 0.25, 0.1, 0.05] if quick else [1.0, 0.5, 0.25, 0.1, 0.05, 0.025,
                                                           0.01]
    name = "demo_quick.toml" if quick else "demo.toml"
    text = _CONFIG.format(name=name, fractions=fractions, vae="" if quick else _VAE,
                          workers=workers)
    path = out / name
    path.write_text(text)
    return load_config(path)
