"""The `noisescale` command line."""

from __future__ import annotations

import os
import subprocess
import sys

import anndata as ad
import numpy as np
import pytest

import noisescale as ns
from conftest import random_counts, same_matrix
from noisescale.cli import main


@pytest.fixture
def cells(tmp_path):
    a = ad.AnnData(random_counts(120, 25, density=0.3, seed=4))
    a.layers["counts"] = a.X.copy()
    a.obs["target"] = np.arange(120) % 40
    a.write_h5ad(tmp_path / "cells.h5ad")
    return a, tmp_path / "cells.h5ad"


def test_thin_fraction(cells, tmp_path, capsys):
    a, src = cells
    assert main(["thin", str(src), str(tmp_path / "o.zarr"), "--fraction", "0.2", "--seed",
                 "3", "--layer", "counts", "--chunk-rows", "16", "--threads", "1"]) == 0
    got = ad.read_zarr(tmp_path / "o.zarr").layers["counts"]
    assert same_matrix(got, ns.thin(a.layers["counts"], 0.2, seed=3))
    err = capsys.readouterr().err
    assert "wrote" in err and "120 cells" in err and "mean UMIs per cell" in err


def test_thin_series_with_pattern(cells, tmp_path):
    a, src = cells
    pattern = str(tmp_path / "c_q{fraction}_{index}.h5ad")
    assert main(["thin", str(src), "--fractions", "0.5", "0.1", "--out-pattern", pattern,
                 "--quiet"]) == 0
    expected = ns.thin_series(a.X, [0.5, 0.1], seed=0)
    for i, q in enumerate([0.5, 0.1]):
        got = ad.read_h5ad(tmp_path / f"c_q{q}_{i}.h5ad").X
        assert same_matrix(got, expected[i])


def test_target_umis_and_column(cells, tmp_path):
    a, src = cells
    assert main(["thin", str(src), str(tmp_path / "t.h5ad"), "--target-umis", "15",
                 "--quiet"]) == 0
    assert same_matrix(ad.read_h5ad(tmp_path / "t.h5ad").X, ns.downsample_to(a.X, 15))
    assert main(["thin", str(src), str(tmp_path / "c.h5ad"), "--target-column", "target",
                 "--quiet", "--seed", "2"]) == 0
    assert same_matrix(ad.read_h5ad(tmp_path / "c.h5ad").X,
                       ns.downsample_to(a.X, a.obs["target"].to_numpy(), seed=2))


def test_errors_are_one_line_messages(cells, tmp_path, capsys):
    _, src = cells
    (tmp_path / "exists.h5ad").write_bytes(b"x")
    cases = [
        (["thin", str(tmp_path / "nope.h5ad"), str(tmp_path / "o.h5ad"), "--fraction", "0.1"],
         "input not found"),
        (["thin", str(src), str(tmp_path / "exists.h5ad"), "--fraction", "0.1"],
         "already exists; pass overwrite=True (--overwrite)"),
        (["thin", str(src), str(tmp_path / "o.h5ad"), "--fraction", "0.1", "--layer", "raw"],
         "layer 'raw' not found"),
    ]
    for argv, message in cases:
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("noisescale thin: error: ") and message in err, err


@pytest.mark.parametrize("argv, message", [
    (["thin", "in.h5ad", "o.h5ad", "--fraction", "1.5"], "must be between 0 and 1"),
    (["thin", "in.h5ad", "o.h5ad"], "one of the arguments --fraction"),
    (["thin", "in.h5ad", "--fractions", "0.5", "0.1"], "--out-pattern"),
    (["thin", "in.h5ad", "--fractions", "0.5", "--out-pattern", "x.h5ad"], "{fraction}"),
    (["thin", "in.h5ad", "--fraction", "0.5"], "give the output path OUT"),
    (["thin", "in.h5ad", "o.h5ad", "--fraction", "0.5", "--chunk-rows", "0"], "at least 1"),
    (["thin", "in.h5ad", "o.h5ad", "--fraction", "0.5", "--fraction", "x"], "not a number"),
])
def test_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_help_and_version_from_the_installed_command(tmp_path):
    # cwd: not the source tree, which `python -m` would import instead of the installed package
    out = subprocess.run([sys.executable, "-m", "noisescale", "thin", "--help"], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    assert "--fraction" in out and "UMI" in out and "examples:" in out
    out = subprocess.run([sys.executable, "-m", "noisescale", "--version"], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"noisescale {ns.__version__}"


def test_clean_removes_what_killed_runs_left(tmp_path, capsys):
    from noisescale.io import temporaries

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a process that is gone
    here = temporaries.host()
    dead = tmp_path / f".o.h5ad.noisescale-tmp-{here}-{proc.pid}-00112233aabb"
    dead.write_bytes(b"partial")
    (tmp_path / "runs").mkdir()
    dead_zarr = tmp_path / "runs" / f".o.zarr.noisescale-tmp-{here}-{proc.pid}-00112233aabb"
    (dead_zarr / "X").mkdir(parents=True)
    live = tmp_path / f".o.h5ad.noisescale-tmp-{here}-{os.getpid()}-00112233aabb"
    live.write_bytes(b"")
    remote = tmp_path / f".o.h5ad.noisescale-tmp-gpu-node-3-{proc.pid}-00112233aabb"
    remote.write_bytes(b"")

    assert main(["clean", str(tmp_path), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert f"would remove {dead} (process {proc.pid} is gone)" in err
    assert f"kept {live} (process {os.getpid()} is running)" in err
    assert f"kept {remote} (written on host gpu-node-3)" in err
    assert "would remove 2 temporaries, kept 2" in err
    assert dead.exists() and dead_zarr.exists()

    assert main(["clean", str(tmp_path)]) == 0
    assert "removed 2 temporaries, kept 2" in capsys.readouterr().err
    assert not dead.exists() and not dead_zarr.exists() and live.exists() and remote.exists()
    assert main(["clean", str(tmp_path / "nope")]) == 1
    assert "noisescale clean: error: not a directory" in capsys.readouterr().err
