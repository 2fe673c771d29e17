"""The sweep configuration: a TOML file (or dict) checked completely before any work starts.

Every table and key is documented in :data:`CONFIG_REFERENCE` (also printed by
``noisescale run --help-config``). Unknown keys are errors, so a misspelt option never passes
silently; every error names the offending key and what it accepts.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from .._internal.checks import check_int, check_number
from ..errors import ConfigError
from ..noise.memory import METHODS as THINNING
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

CONFIG_REFERENCE = """\
# A noisescale sweep. Paths are relative to this file.

[dataset]
path = "cells.h5ad"        # required: .h5ad (or .zarr) with raw UMI counts
name = "cells"             # label in the results (default: the file name without suffix)
layer = "counts"           # counts in layers[...] (default: X)
filter = { Valid = 1 }     # optional: keep only cells whose obs columns equal these values

[split]
test_fraction = 0.2        # held-out cells (or n_test = 1000)
stratify = "cell_type"     # optional obs column: same proportions in both sets
n_validation = 0           # optional: cells taken from the training pool for the trained
                           # models' early stopping, thinned like the training cells (0: each
                           # model splits its own validation_fraction off its training cells)
seed = 0                   # the split is made once, with this seed

[sweep]
fractions = [1.0, 0.5, 0.2, 0.1, 0.05]  # thinning fractions q, or instead:
# umis_per_cell = [2000, 1000, 500]     # target mean UMIs per held-out cell (as fractions)
# umis_per_cell = { min = 10, max = 8100, count = 10 }  # a log-spaced grid (also n_cells)
n_cells = [500, 1000]      # training cells N; "all" = the whole training pool
seeds = [0, 1, 2]          # replicates: thinning, subsampling, model and estimator seeds
thinning = "binomial"      # binomial: each UMI kept independently, depths nested (each a
                           # sub-sample of the deeper one); per_gene: the paper authors'
                           # variant, each gene keeps floor(total * q) of its UMIs, each depth
                           # drawn independently (noisescale.thin(method="per_gene"))
nested_cells = true        # true: each N's training cells are a subset of the next N's;
                           # false: an independent random sample for every N (the authors')

[[models]]                 # one table per model; keys other than name/label go to the model
name = "pca"               # pca, random_projection, vae, transformer
label = "pca"              # name in the results (default: name); must be unique
# n_dims = 16, max_seconds = 120, ...

[[signals]]                # one table per auxiliary signal
name = "cell_type"         # label in the results (default: the column or key)
kind = "categorical"       # categorical | continuous | clone_pairs | spatial_neighbor | time
column = "cell_type"       # categorical, time: an obs column
# key = "protein"          # continuous: an obsm key (or columns = ["a", "b"] of obs)
# transform = "log1p"      # continuous: log1p (default) or none
# clone_key = "X_clone"    # clone_pairs: obsm clone-membership matrix or obs column of clone ids
# time_column = "time_info"  # clone_pairs: obs time; early = 2, late = 6 (default: min, max)
# key = "spatial", k = 5   # spatial_neighbor: obsm coordinates, pair with one of k neighbours
estimator = "auto"         # default: noisescale.mi.default_method(kind, embedding dims, signal
                           # dims): ross (categorical, embedding <= 4 dims) or ksg (both sides
                           # <= 2 dims), else lmi (slow: it trains); or name one: categorical:
                           # ross | lmi | infonce | mine | cca | probe; others: ksg | lmi |
                           # infonce | mine | cca | probe. The results' estimator column holds
                           # the method used.

[estimator]
k = 3                      # KSG / Ross neighbour rank
uncertainty = true         # mi_se, mi_lo, mi_hi (half-sampling) and mi_null, mi_null_sd
resamples = 10             # half-sample replicates of the standard error (>= 2)
null_shuffles = 3          # shuffled pairings of the null (>= 1)
refit = false              # trained estimators: false resamples the held-out evaluation of the
                           # networks trained once (cheap, narrower); true retrains every time
lmi = { latent_dim = 8 }   # options of noisescale.mi.lmi; likewise ksg, ross, infonce, mine,
                           # cca, probe = { ... } for those methods' functions

[run]
output = "results"         # output directory (jobs/, results.csv, fits.csv, report.html)
executor = "local"         # local | dask
workers = 0                # local: processes (0 = one per core); dask: LocalCluster workers
threads_per_worker = 1     # BLAS/torch/OpenMP threads of each job
scheduler = ""             # dask: scheduler address (empty: start a LocalCluster)
keep_cache = false         # keep the thinned matrices in output/cache after the run
# memory_gb = 8            # memory a sweep process may fill with counts (default: a quarter of
                           # this machine's RAM); more than that goes out of core
out_of_core = "auto"       # auto (by memory_gb) | always | never: thinned cells in an on-disk
                           # cache (output/cache) and models trained from a stream of chunks
"""

#: run.out_of_core: decide by run.memory_gb, or force the on-disk cache and streamed fits (or not).
OUT_OF_CORE = ("auto", "always", "never")
SIGNAL_KINDS = ("categorical", "continuous", "clone_pairs", "spatial_neighbor", "time")
_SIGNAL_KEYS = {
    "categorical": {"column"},
    "continuous": {"key", "columns", "transform"},
    "clone_pairs": {"clone_key", "time_column", "early", "late"},
    "spatial_neighbor": {"key", "k"},
    "time": {"column"},
}
_TABLES = {"dataset", "split", "sweep", "models", "signals", "estimator", "run"}


@dataclass(frozen=True)
class DatasetSpec:
    path: str
    name: str
    layer: str | None = None
    filter: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SplitSpec:
    test_fraction: float | None = 0.2
    n_test: int | None = None
    stratify: str | None = None
    seed: int = 0
    n_validation: int = 0


@dataclass(frozen=True)
class SweepSpec:
    fractions: tuple[float, ...] | None
    umis_per_cell: tuple[float, ...] | None
    n_cells: tuple[int | str, ...]
    seeds: tuple[int, ...]
    thinning: str = "binomial"
    nested_cells: bool = True


@dataclass(frozen=True)
class ModelSpec:
    name: str
    label: str
    params: dict[str, Any]


@dataclass(frozen=True)
class SignalSpec:
    name: str
    kind: str
    estimator: str
    options: dict[str, Any]


@dataclass(frozen=True)
class EstimatorSpec:
    """``[estimator]``: how every signal's MI is estimated (see :func:`noisescale.mi.estimate`).

    ``options`` maps a method to the options of its function (only methods given)."""

    k: int = 3
    uncertainty: bool = True
    resamples: int = 10
    null_shuffles: int = 3
    refit: bool = False
    options: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSpec:
    output: str = "results"
    executor: str = "local"
    workers: int = 0
    threads_per_worker: int = 1
    scheduler: str = ""
    keep_cache: bool = False
    memory_gb: float | None = None  # None: a quarter of this machine's RAM
    out_of_core: str = "auto"


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep configuration (see :data:`CONFIG_REFERENCE`)."""

    dataset: DatasetSpec
    split: SplitSpec
    sweep: SweepSpec
    models: tuple[ModelSpec, ...]
    signals: tuple[SignalSpec, ...]
    estimator: EstimatorSpec = field(default_factory=EstimatorSpec)
    run: RunSpec = field(default_factory=RunSpec)
    text: str = ""  # the TOML it was read from, for the provenance

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("text")
        return d

    @property
    def hash(self) -> str:
        """Hash of everything that decides the results (not where or how they are run)."""
        d = self.as_dict()
        d.pop("run")
        return stable_hash(d)

    def with_run(self, **changes: Any) -> SweepConfig:
        """A copy with some ``[run]`` options replaced (e.g. from the command line)."""
        run = {**asdict(self.run), **{k: v for k, v in changes.items() if v is not None}}
        return replace(self, run=_run(run))


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hex digest of a JSON-able object, independent of key order."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# ---------------------------------------------------------------------------------------------
# Reading


def load_config(source: str | os.PathLike | Mapping[str, Any]) -> SweepConfig:
    """Read and validate a sweep configuration from a TOML file or a dict.

    Relative dataset and output paths are resolved against the file's directory (or the
    working directory for a dict). Raises :class:`ConfigError` naming the first problem.
    """
    if isinstance(source, Mapping):
        return parse_config(source, base=Path.cwd())
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return parse_config(raw, base=path.resolve().parent, text=text)


def parse_config(raw: Mapping[str, Any], *, base: Path, text: str = "") -> SweepConfig:
    """Validate a configuration already read into a dict (see :func:`load_config`)."""
    _no_unknown("the config", raw, _TABLES)
    for table in ("dataset", "sweep"):
        if table not in raw:
            raise ConfigError(f"the config needs a [{table}] table")
    for table in ("models", "signals"):
        if table not in raw:
            raise ConfigError(f"the config needs at least one [[{table}]] table")
    dataset = _dataset(_table(raw, "dataset"), base)
    split = _split(_table(raw, "split", {}))
    sweep = _sweep(_table(raw, "sweep"))
    models = _models(raw["models"], sweep, split)
    signals = _signals(raw["signals"])
    estimator = _estimator(_table(raw, "estimator", {}))
    run = dict(_table(raw, "run", {}))
    if "output" in run:
        run["output"] = str((base / str(run["output"])).resolve())
    else:
        run["output"] = str((base / "results").resolve())
    return SweepConfig(dataset=dataset, split=split, sweep=sweep, models=models,
                       signals=signals, estimator=estimator, run=_run(run), text=text)


def _table(raw: Mapping[str, Any], name: str, default: Any = None) -> Mapping[str, Any]:
    value = raw.get(name, default)
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{name}] must be a table of options")
    return value


def _no_unknown(where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {where}; allowed: {sorted(allowed)}")


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _list(name: str, value: Any) -> list:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{name} must be a non-empty list, got {value!r}")
    return value


def _dataset(t: Mapping[str, Any], base: Path) -> DatasetSpec:
    _no_unknown("[dataset]", t, {"path", "name", "layer", "filter"})
    if "path" not in t:
        raise ConfigError("[dataset] needs path = the .h5ad file with raw counts")
    path = (base / _str("dataset.path", t["path"])).resolve()
    name = _str("dataset.name", t.get("name", path.name.split(".")[0]))
    layer = t.get("layer")
    if layer is not None:
        layer = _str("dataset.layer", layer)
    filt = t.get("filter", {})
    if not isinstance(filt, Mapping):
        raise ConfigError("dataset.filter must be a table {obs column = value}")
    return DatasetSpec(path=str(path), name=name, layer=layer, filter=dict(filt))


def _split(t: Mapping[str, Any]) -> SplitSpec:
    _no_unknown("[split]", t, {"test_fraction", "n_test", "stratify", "seed", "n_validation"})
    if "test_fraction" in t and "n_test" in t:
        raise ConfigError("[split] takes test_fraction or n_test, not both")
    n_test = None
    frac: float | None = 0.2
    if "n_test" in t:
        n_test, frac = check_int("split.n_test", t["n_test"], 2, error=ConfigError), None
    elif "test_fraction" in t:
        frac = check_number("split.test_fraction", t["test_fraction"], error=ConfigError)
        if not 0 < frac < 1:
            raise ConfigError(f"split.test_fraction must be in (0, 1), got {frac}")
    stratify = t.get("stratify")
    if stratify is not None:
        stratify = _str("split.stratify", stratify)
    return SplitSpec(test_fraction=frac, n_test=n_test, stratify=stratify,
                     seed=_seed("split.seed", t.get("seed", 0)),
                     n_validation=check_int("split.n_validation", t.get("n_validation", 0), 0,
                                            error=ConfigError))


def _seed(name: str, value: Any) -> int:
    v = check_int(name, value, 0, error=ConfigError)
    if v >= 2**63:
        raise ConfigError(f"{name} must be < 2**63, got {v}")
    return v


def _sweep(t: Mapping[str, Any]) -> SweepSpec:
    _no_unknown("[sweep]", t, {"fractions", "umis_per_cell", "n_cells", "seeds", "thinning",
                               "nested_cells"})
    if ("fractions" in t) == ("umis_per_cell" in t):
        raise ConfigError("[sweep] needs exactly one of fractions = [...] (thinning fractions) "
                          "or umis_per_cell = [...] (target mean depths)")
    fractions = umis = None
    if "fractions" in t:
        fractions = tuple(check_number("sweep.fractions", q, error=ConfigError)
                          for q in _grid("sweep.fractions", t["fractions"]))
        bad = [q for q in fractions if not 0 < q <= 1]
        if bad:
            raise ConfigError(f"sweep.fractions must lie in (0, 1], got {bad}")
        _distinct("sweep.fractions", fractions)
    else:
        umis = tuple(check_number("sweep.umis_per_cell", u, error=ConfigError)
                     for u in _grid("sweep.umis_per_cell", t["umis_per_cell"]))
        bad = [u for u in umis if u <= 0]
        if bad:
            raise ConfigError(f"sweep.umis_per_cell must be > 0, got {bad}")
        _distinct("sweep.umis_per_cell", umis)
    sizes: list[int | str] = []
    for n in _grid("sweep.n_cells", t.get("n_cells", ["all"]), integer=True):
        if n == "all":
            sizes.append("all")
        else:
            sizes.append(check_int("sweep.n_cells", n, 2, error=ConfigError))
    _distinct("sweep.n_cells", sizes)
    seeds = tuple(_seed("sweep.seeds", s) for s in _list("sweep.seeds", t.get("seeds", [0])))
    _distinct("sweep.seeds", seeds)
    thinning = t.get("thinning", "binomial")
    if thinning not in THINNING:
        raise ConfigError(f"sweep.thinning must be one of {list(THINNING)}, got {thinning!r}")
    nested = t.get("nested_cells", True)
    if not isinstance(nested, bool):
        raise ConfigError(f"sweep.nested_cells must be true or false, got {nested!r}")
    return SweepSpec(fractions=fractions, umis_per_cell=umis, n_cells=tuple(sizes), seeds=seeds,
                     thinning=thinning, nested_cells=nested)


def _grid(name: str, value: Any, *, integer: bool = False) -> list:
    """A list of values, or ``{min, max, count}``: ``count`` log-spaced values from min to max
    (rounded to integers for ``integer``, e.g. cell numbers)."""
    if not isinstance(value, Mapping):
        return _list(name, value)
    _no_unknown(name, value, {"min", "max", "count"})
    missing = sorted({"min", "max", "count"} - set(value))
    if missing:
        raise ConfigError(f"{name} as a log-spaced grid needs min, max and count; missing "
                          f"{missing}")
    lo = check_number(f"{name}.min", value["min"], error=ConfigError)
    hi = check_number(f"{name}.max", value["max"], error=ConfigError)
    count = check_int(f"{name}.count", value["count"], 2, error=ConfigError)
    if not 0 < lo < hi:
        raise ConfigError(f"{name}: a log-spaced grid needs 0 < min < max, got min = {lo}, "
                          f"max = {hi}")
    values = np.geomspace(lo, hi, count)
    if integer:
        ints = [int(v) for v in np.rint(values)]
        if len(set(ints)) != count:
            raise ConfigError(f"{name}: {count} log-spaced integers from {lo:g} to {hi:g} "
                              "repeat after rounding; lower count")
        return ints
    return [float(v) for v in values]


def _distinct(name: str, values) -> None:
    if len(set(values)) != len(values):
        raise ConfigError(f"{name} has repeated values: {list(values)}")


def _models(items: Any, sweep: SweepSpec, split: SplitSpec) -> tuple[ModelSpec, ...]:
    from .. import models

    sizes = [n for n in sweep.n_cells if n != "all"]
    out = []
    for i, t in enumerate(_list("models", items)):
        where = f"models[{i}]"
        if not isinstance(t, Mapping) or "name" not in t:
            raise ConfigError(f"{where} must be a table with name = one of {models.available()}")
        name = _str(f"{where}.name", t["name"])
        label = _str(f"{where}.label", t.get("label", name))
        params = {k: v for k, v in t.items() if k not in ("name", "label")}
        try:
            models.get(name, **params)  # unknown names and bad parameters fail here, not later
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: {e}") from None
        spec = ModelSpec(name=name, label=label, params=params)
        # e.g. PCA's n_dims against its n_top_genes and the explicit training sizes
        check_model_shapes([spec], sizes, None, first=i, n_validation=split.n_validation)
        out.append(spec)
    _distinct("model labels (set label = ... to tell two configurations apart)",
              [m.label for m in out])
    return tuple(out)


def check_model_shapes(models: Sequence[ModelSpec], n_cells: Sequence[int],
                       n_genes: int | None, *, first: int = 0, n_validation: int = 0) -> None:
    """Raise ConfigError when a model cannot be fitted on one of the training sizes
    ``n_cells`` with ``n_genes`` genes (None: not known yet), e.g. PCA's n_dims above the
    cells or genes, or a VAE whose validation split of the smallest size is empty.

    :func:`parse_config` checks the explicit ``sweep.n_cells``; with the dataset read, the
    sweep checks every size ("all" resolved) and the dataset's genes before any job runs.
    ``first`` is the position of ``models[0]`` in the config, for the messages.
    ``n_validation``: the sweep's validation cells (``split.n_validation``); with them the
    models train on every training cell and need no validation split of their own.
    """
    from .. import models as registry

    for i, spec in enumerate(models, start=first):
        model = registry.get(spec.name, **spec.params)
        where = f"models[{i}]" + ("" if spec.label == spec.name else f" ({spec.label!r})")
        for n in sorted(set(n_cells)) or [None]:
            _check_shape(where, model, n, n_genes, n_validation or None)


def _check_shape(where: str, model, n_cells: int | None, n_genes: int | None,
                 n_validation: int | None) -> None:
    try:
        model.check_fit_shape(n_cells, n_genes, n_validation=n_validation)
    except ValueError as e:
        told = [f"training size n_cells = {n_cells}"] if n_cells is not None else []
        told += [f"{n_genes} genes in the dataset"] if n_genes is not None else []
        raise ConfigError(f"{where}: {e}" + (f" ({', '.join(told)})" if told else "")) from None


def _signals(items: Any) -> tuple[SignalSpec, ...]:
    out = []
    for i, t in enumerate(_list("signals", items)):
        where = f"signals[{i}]"
        if not isinstance(t, Mapping):
            raise ConfigError(f"{where} must be a table")
        kind = t.get("kind")
        if kind not in SIGNAL_KINDS:
            raise ConfigError(f"{where}.kind must be one of {list(SIGNAL_KINDS)}, got {kind!r}")
        _no_unknown(where, t, {"name", "kind", "estimator"} | _SIGNAL_KEYS[kind])
        options = {k: v for k, v in t.items() if k not in ("name", "kind", "estimator")}
        allowed = estimators_for(kind)
        estimator = t.get("estimator", "auto")
        if estimator not in allowed:
            raise ConfigError(f"{where}.estimator must be one of {list(allowed)} for a {kind} "
                              f"signal, got {estimator!r}")
        _signal_options(where, kind, options)
        default_name = options.get("column") or options.get("key") or options.get("clone_key")
        name = _str(f"{where}.name", t.get("name", default_name or kind))
        out.append(SignalSpec(name=name, kind=kind, estimator=estimator, options=options))
    _distinct("signal names", [s.name for s in out])
    return tuple(out)


def _signal_options(where: str, kind: str, o: dict[str, Any]) -> None:
    if kind in ("categorical", "time"):
        if "column" not in o:
            raise ConfigError(f"{where} ({kind}) needs column = an obs column")
        _str(f"{where}.column", o["column"])
    elif kind == "continuous":
        if ("key" in o) == ("columns" in o):
            raise ConfigError(f"{where} (continuous) needs key = an obsm key, or columns = "
                              "[obs columns]")
        if "key" in o:
            _str(f"{where}.key", o["key"])
        else:
            for c in _list(f"{where}.columns", o["columns"]):
                _str(f"{where}.columns", c)
        if o.setdefault("transform", "log1p") not in ("log1p", "none"):
            raise ConfigError(f"{where}.transform must be 'log1p' or 'none', got "
                              f"{o['transform']!r}")
    elif kind == "clone_pairs":
        for key in ("clone_key", "time_column"):
            if key not in o:
                raise ConfigError(f"{where} (clone_pairs) needs {key}")
            _str(f"{where}.{key}", o[key])
    elif kind == "spatial_neighbor":
        if "key" not in o:
            raise ConfigError(f"{where} (spatial_neighbor) needs key = an obsm key of "
                              "coordinates")
        _str(f"{where}.key", o["key"])
        o["k"] = check_int(f"{where}.k", o.get("k", 5), 1, error=ConfigError)


def estimators_for(kind: str) -> tuple[str, ...]:
    """The ``estimator`` values a signal of ``kind`` accepts: "auto" and every method of
    :data:`noisescale.mi.METHODS` that applies (labels: all but ksg; values: all but ross)."""
    from ..mi import METHODS

    wrong = "ksg" if kind == "categorical" else "ross"
    return ("auto", *(m for m in METHODS if m != wrong))


def _estimator(t: Mapping[str, Any]) -> EstimatorSpec:
    from ..mi import METHODS

    scalars = {"k", "uncertainty", "resamples", "null_shuffles", "refit"}
    _no_unknown("[estimator]", t, scalars | set(METHODS))
    flags = {}
    for key, default in (("uncertainty", True), ("refit", False)):
        flags[key] = t.get(key, default)
        if not isinstance(flags[key], bool):
            raise ConfigError(f"estimator.{key} must be true or false, got {flags[key]!r}")
    options = {}
    for method in METHODS:
        if method in t:
            table = t[method]
            if not isinstance(table, Mapping):
                raise ConfigError(f"estimator.{method} must be a table of options of "
                                  f"noisescale.mi's {method!r} estimator")
            _check_options(method, dict(table))
            options[method] = dict(table)
    return EstimatorSpec(
        k=check_int("estimator.k", t.get("k", 3), 1, error=ConfigError),
        resamples=check_int("estimator.resamples", t.get("resamples", 10), 2,
                            error=ConfigError),
        null_shuffles=check_int("estimator.null_shuffles", t.get("null_shuffles", 3), 1,
                                error=ConfigError),
        options=options, **flags)


def _check_options(method: str, options: dict[str, Any]) -> None:
    """Unknown keys of ``estimator.<method>`` are errors: the method's options are those of
    :func:`noisescale.mi.estimate.method_options`."""
    from ..mi.estimate import method_options

    _no_unknown(f"estimator.{method}", options, method_options(method))


def _run(t: Mapping[str, Any]) -> RunSpec:
    _no_unknown("[run]", t, {"output", "executor", "workers", "threads_per_worker",
                             "scheduler", "keep_cache", "memory_gb", "out_of_core"})
    executor = t.get("executor", "local")
    if executor not in ("local", "dask"):
        raise ConfigError(f"run.executor must be 'local' or 'dask', got {executor!r}")
    keep = t.get("keep_cache", False)
    if not isinstance(keep, bool):
        raise ConfigError(f"run.keep_cache must be true or false, got {keep!r}")
    scheduler = t.get("scheduler", "") or ""
    if not isinstance(scheduler, str):
        raise ConfigError(f"run.scheduler must be an address string, got {scheduler!r}")
    memory = t.get("memory_gb")
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, (int, float))
                               or not 0 < memory < float("inf")):
        raise ConfigError(f"run.memory_gb must be a positive number of GB, got {memory!r}")
    out_of_core = t.get("out_of_core", "auto")
    if out_of_core not in OUT_OF_CORE:
        raise ConfigError(f"run.out_of_core must be one of {', '.join(OUT_OF_CORE)}, got "
                          f"{out_of_core!r}")
    return RunSpec(output=_str("run.output", t.get("output", "results")), executor=executor,
                   workers=check_int("run.workers", t.get("workers", 0), 0, error=ConfigError),
                   threads_per_worker=check_int("run.threads_per_worker",
                                           t.get("threads_per_worker", 1), 1, error=ConfigError),
                   scheduler=scheduler, keep_cache=keep,
                   memory_gb=None if memory is None else float(memory), out_of_core=out_of_core)
