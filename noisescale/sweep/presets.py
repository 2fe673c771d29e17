"""Example configurations printed by ``noisescale run --example-config [NAME]``.

``reference`` documents every key (:data:`~noisescale.sweep.config.CONFIG_REFERENCE`);
``paper`` mirrors the protocol of Gowri, Yin & Klein 2025 ("Measurement noise scaling laws
for cellular representation learning"), commented line by line with what the paper did.
"""

from __future__ import annotations

from .config import CONFIG_REFERENCE

PAPER_CONFIG = """\
# The protocol of Gowri, Yin & Klein 2025, "Measurement noise scaling laws for cellular
# representation learning", as a noisescale sweep. Each comment says what the paper did;
# "differs:" marks where noisescale cannot or does not do the same.
# At full size this is 3 seeds x 10 depths x 7 training sizes x 4 models = 840 jobs, many of
# them trained networks on up to 10^5 cells: a GPU cluster's work. To try it on a laptop,
# lower n_test, n_cells, umis_per_cell and seeds (README, "Reproducing the paper").

[dataset]
path = "cells.h5ad"          # raw UMI counts (X, or layer = "counts")
# layer = "counts"

[split]
n_test = 30000               # 30,000 held-out cells, outside every training sample
n_validation = 1000          # a 1,000-cell validation set for early stopping, also outside;
                             # thinned to the same depth as the training cells
seed = 42                    # the split's seed (the paper's first seed)

[sweep]
umis_per_cell = { min = 10, max = 8100, count = 10 }  # 10 log-spaced depths, 10 ... 8,100
                             # (each at most the held-out cells' mean depth)
n_cells = { min = 100, max = 100000, count = 7 }     # log-spaced training sizes 100 ... 10^5
                             # (10^7 on their 1 M-cell embryo atlas)
nested_cells = false         # every training size an independent random sample of the pool
thinning = "per_gene"        # each gene keeps exactly floor(total * q) of its UMIs, without
                             # replacement across cells; each depth drawn on its own
seeds = [42, 1404, 2701]     # their seeds (2303 too); 2-3 replicates per point

# PCA: normalize_total(1e4) + log1p + TruncatedSVD(16) on highly variable genes.
[[models]]
name = "pca"
n_dims = 16
center = false               # TruncatedSVD: the matrix is not centered
n_top_genes = 2000           # differs: the paper's HVG count is not stated; noisescale's
                             # default (seurat_v3 on the training cells)

# Random projection: Gaussian, 16 dims, of the raw counts.
[[models]]
name = "random_projection"
label = "rp"
n_dims = 16
log_normalize = false        # raw counts, no normalization
center = false

# scVI: 1 hidden layer of 512 units, 16 latent dims, ZINB with per-gene dispersion, batch
# 512, lr 1e-3, early stopping on the validation ELBO (patience 3), at most 10^7 / N epochs.
[[models]]
name = "vae"
label = "scvi"
n_dims = 16
n_layers = 1
n_hidden = 512
likelihood = "zinb"
batch_size = 512
lr = 1e-3
patience = 3
min_epochs = 1
cell_epochs = 10000000       # at most 10^7 / N epochs
max_epochs = 10000000
kl_warmup = 400              # scvi-tools' KL warm-up (differs: noisescale counts the patience
                             # from its end, scvi-tools from the first epoch)
# max_seconds = 3600         # optional wall-time cap per job (differs: not in the paper)

# Geneformer-like BERT from scratch: 3 layers, hidden 256, 4 heads, intermediate 512, ReLU,
# dropout 0.02, 512 rank-value tokens (gene expression / per-gene median), masked-LM, lr 1e-3
# with a linear schedule after 5,000 warm-up steps, batch 64, patience 5; the embedding is the
# mean over tokens of the last layer (256 dims).
[[models]]
name = "transformer"
label = "geneformer"
n_layers = 3
width = 256
n_heads = 4
ff_width = 512
activation = "relu"
dropout = 0.02
max_len = 512                # tokens per cell
mask_fraction = 0.15
lr = 1e-3
lr_schedule = "linear"
warmup_steps = 5000
batch_size = 64
patience = 5
min_epochs = 1               # differs: the paper gives no epoch cap for this model; the
cell_epochs = 10000000       # scVI cap (10^7 / N) is used, so that the warm-up and the
max_epochs = 10000000        # linear schedule run their course

# Signals: one table each; the paper used cell type (one-hot), protein counts (CITE-seq),
# clone sister pairs (one early and one late cell per clone, LARRY) and spatial neighbours
# (one random of the 4 nearest).
[[signals]]
name = "cell_type"
kind = "categorical"
column = "cell_type"
estimator = "lmi"            # latent MI for every signal

# [[signals]]
# name = "protein"
# kind = "continuous"
# key = "protein"            # obsm key of the protein counts
# estimator = "lmi"

# [[signals]]
# name = "clone"
# kind = "clone_pairs"
# clone_key = "X_clone"
# time_column = "time_info"  # early = earliest, late = latest time point by default
# estimator = "lmi"

# [[signals]]
# name = "neighbor"
# kind = "spatial_neighbor"
# key = "spatial"
# k = 4                      # one random of the 4 nearest neighbours
# estimator = "lmi"

[estimator]
uncertainty = false          # the paper reports the spread over seeds, not a per-estimate
                             # error; true adds mi_se and a null (more training)
# Latent MI as in their code: 30 % of the samples held out for the estimate (the mean of the
# pointwise MI on them), batch 512, up to 300 epochs.
lmi = { test_fraction = 0.3, batch_size = 512, epochs = 300 }

[run]
output = "paper-results"
# The fits (`noisescale fit`, also run after the sweep) are the authors': unweighted least
# squares over every seed's points with u_bar >= 0 and I_max >= 0 from many starts, 1-sigma
# errors (the *_err columns); a fit whose standard errors exceed their values is flagged
# "uncertain" (reliable = false), the fits the paper dropped. Figures:
#   noisescale figures paper-results --out figures
"""

#: Configurations ``noisescale run --example-config NAME`` prints.
EXAMPLES = {"reference": CONFIG_REFERENCE, "paper": PAPER_CONFIG}
