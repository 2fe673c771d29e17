"""Streaming never harms the input, never leaves partial output, and explains bad input."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pytest
import scipy.sparse as sp

import noisescale as ns
from conftest import random_counts
from noisescale.io import AnnDataWriter


def digest(path: Path) -> str:
    """Checksum of a file, or of every file under a directory."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if ".noisescale-" in p.name]


@pytest.fixture
def cells(tmp_path) -> Path:
    a = ad.AnnData(random_counts(400, 30, density=0.3, seed=1))
    a.obs["depth"] = np.arange(400) % 50
    a.write_h5ad(tmp_path / "cells.h5ad")
    return tmp_path / "cells.h5ad"


def test_failure_midway_leaves_nothing_and_keeps_input(cells, tmp_path, monkeypatch):
    before = digest(cells)
    calls = {"n": 0}
    original = AnnDataWriter.append_rows

    def failing(self, key, block):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, key, block)

    monkeypatch.setattr(AnnDataWriter, "append_rows", failing)
    with pytest.raises(OSError, match="No space left"):
        ns.thin_series_file(cells, [tmp_path / "a.h5ad", tmp_path / "b.zarr"], [0.5, 0.1],
                            chunk_rows=50)
    assert not (tmp_path / "a.h5ad").exists() and not (tmp_path / "b.zarr").exists()
    assert leftovers(tmp_path) == []
    assert digest(cells) == before


def test_disk_full_is_reported_and_cleaned(cells, tmp_path, monkeypatch):
    """An h5py write failing with ENOSPC becomes a 'disk full' error; nothing is left."""
    from anndata._core import sparse_dataset

    def full(self, *args, **kwargs):
        raise OSError("Can't write data (file write failed: errno = 28, error message = "
                      "'No space left on device')")

    monkeypatch.setattr(sparse_dataset.BaseCompressedSparseDataset, "append", full)
    with pytest.raises(OSError, match="disk full while writing .*out.h5ad") as info:
        ns.thin_file(cells, tmp_path / "out.h5ad", 0.5, chunk_rows=100)
    assert info.value.errno == errno.ENOSPC
    assert not (tmp_path / "out.h5ad").exists() and leftovers(tmp_path) == []


def test_existing_output_refused_then_replaced_only_on_success(cells, tmp_path, monkeypatch):
    out = tmp_path / "out.h5ad"
    out.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="overwrite"):
        ns.thin_file(cells, out, 0.5)
    assert out.read_bytes() == b"precious"

    def boom(self, key, block):
        raise RuntimeError("simulated crash")

    with monkeypatch.context() as m:
        m.setattr(AnnDataWriter, "append_rows", boom)
        with pytest.raises(RuntimeError, match="simulated"):
            ns.thin_file(cells, out, 0.5, overwrite=True)
    assert out.read_bytes() == b"precious" and leftovers(tmp_path) == []
    ns.thin_file(cells, out, 0.5, overwrite=True)
    assert ad.read_h5ad(out).n_obs == 400 and leftovers(tmp_path) == []


def test_output_may_not_be_the_input(cells):
    before = digest(cells)
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="is the input"):
            ns.thin_file(cells, cells, 0.5, overwrite=overwrite)
    assert digest(cells) == before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_no_output(tmp_path, sig):
    """Kill the CLI mid-run: no output, no temporary files, input unchanged."""
    src = tmp_path / "big.h5ad"
    ad.AnnData(random_counts(20000, 20, density=0.3, seed=2)).write_h5ad(src)
    before = digest(src)
    out = tmp_path / "out.h5ad"
    proc = subprocess.Popen(
        [sys.executable, "-m", "noisescale", "thin", str(src), str(out), "--fraction", "0.5",
         "--chunk-rows", "1", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=tmp_path)  # not the source tree, which -m would import instead of the install
    deadline = time.monotonic() + 60
    while not leftovers(tmp_path):  # the temporary output exists: the job is writing
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not out.exists() and leftovers(tmp_path) == []
    assert digest(src) == before


# ---------------------------------------------------------------------------- bad input


def test_missing_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="input not found"):
        ns.thin_file(tmp_path / "nope.h5ad", tmp_path / "o.h5ad", 0.5)


def test_not_an_anndata_file(tmp_path):
    junk = tmp_path / "junk.h5ad"
    junk.write_bytes(b"this is not HDF5 at all")
    with pytest.raises(ValueError, match="not an AnnData file"):
        ns.thin_file(junk, tmp_path / "o.h5ad", 0.5)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["data"] = np.arange(3)
    with pytest.raises(ValueError, match="not an AnnData store"):
        ns.thin_file(plain, tmp_path / "o.h5ad", 0.5)
    (tmp_path / "dir.zarr").mkdir()
    with pytest.raises(ValueError, match="not a zarr store"):
        ns.thin_file(tmp_path / "dir.zarr", tmp_path / "o.h5ad", 0.5)
    assert leftovers(tmp_path) == [] and not (tmp_path / "o.h5ad").exists()


def test_missing_x_and_layer(cells, tmp_path):
    a = ad.AnnData(obs={"x": np.arange(4)})
    a.write_h5ad(tmp_path / "nox.h5ad")
    with pytest.raises(KeyError, match="has no X"):
        ns.thin_file(tmp_path / "nox.h5ad", tmp_path / "o.h5ad", 0.5)
    with pytest.raises(KeyError, match=r"layer 'counts' not found .*layers: none"):
        ns.thin_file(cells, tmp_path / "o.h5ad", 0.5, layer="counts")


def test_csc_is_refused_with_advice(tmp_path):
    ad.AnnData(random_counts(20, 10).tocsc()).write_h5ad(tmp_path / "csc.h5ad")
    with pytest.raises(ValueError, match="CSC.*tocsr"):
        ns.thin_file(tmp_path / "csc.h5ad", tmp_path / "o.h5ad", 0.5)


def test_non_integer_counts_name_file_row_and_column(tmp_path):
    X = random_counts(200, 10, density=0.5, seed=3)
    X.data[X.indptr[150]] = 2.5  # first entry of row 150
    col = X.indices[X.indptr[150]]
    ad.AnnData(X).write_h5ad(tmp_path / "norm.h5ad")
    before = digest(tmp_path / "norm.h5ad")
    with pytest.raises(ValueError, match=rf"norm.h5ad X: .*whole numbers, found 2.5 at row 150, "
                                         rf"column {col}"):
        ns.thin_file(tmp_path / "norm.h5ad", tmp_path / "o.h5ad", 0.5, chunk_rows=64)
    assert not (tmp_path / "o.h5ad").exists() and leftovers(tmp_path) == []
    assert digest(tmp_path / "norm.h5ad") == before


def test_bad_arguments(cells, tmp_path):
    with pytest.raises(ValueError, match="must end in .h5ad or .zarr"):
        ns.thin_file(cells, tmp_path / "o.csv", 0.5)
    with pytest.raises(ValueError, match="chunk_rows must be an integer >= 1"):
        ns.thin_file(cells, tmp_path / "o.h5ad", 0.5, chunk_rows=0)
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\]"):
        ns.thin_file(cells, tmp_path / "o.h5ad", 1.5)
    with pytest.raises(ValueError, match="one per fraction"):
        ns.thin_series_file(cells, [tmp_path / "a.h5ad"], [0.5, 0.1])
    with pytest.raises(ValueError, match="distinct"):
        ns.thin_series_file(cells, [tmp_path / "a.h5ad"] * 2, [0.5, 0.1])
    with pytest.raises(FileNotFoundError, match="output directory does not exist"):
        ns.thin_file(cells, tmp_path / "missing" / "o.h5ad", 0.5)
    with pytest.raises(ValueError, match="compression= applies to .h5ad"):
        ns.thin_file(cells, tmp_path / "o.zarr", 0.5, compression="gzip")
    with pytest.raises(KeyError, match="obs column 'nope' not found"):
        ns.downsample_file(cells, tmp_path / "o.h5ad", "nope")
    with pytest.raises(ValueError, match="one value per cell"):
        ns.downsample_file(cells, tmp_path / "o.h5ad", np.ones(3, dtype=int))
    assert leftovers(tmp_path) == [] and not (tmp_path / "o.h5ad").exists()


def test_dense_float_with_fraction_is_checked(tmp_path):
    a = ad.AnnData(np.array([[1.0, 2.0], [0.5, 1.0]], dtype=np.float32))
    a.write_h5ad(tmp_path / "d.h5ad")
    with pytest.raises(ValueError, match="found 0.5 at row 1, column 0"):
        ns.thin_file(tmp_path / "d.h5ad", tmp_path / "o.h5ad", 0.5)


def test_compressed_output_roundtrips(cells, tmp_path):
    out = ns.thin_file(cells, tmp_path / "gz.h5ad", 0.5, compression="gzip", seed=3)
    with h5py.File(out) as f:
        assert f["X/data"].compression == "gzip"
    X = ad.read_h5ad(cells).X
    assert (ad.read_h5ad(out).X != ns.thin(X, 0.5, seed=3)).nnz == 0
    assert isinstance(ad.read_h5ad(out).X, sp.csr_matrix)


def test_cancel_event_stops_at_a_chunk_boundary(cells, tmp_path, monkeypatch):
    from noisescale.errors import Cancelled

    event = threading.Event()
    original = AnnDataWriter.append_rows
    written = []

    def append_then_cancel(self, key, block):
        written.append(block.shape[0])
        original(self, key, block)
        if len(written) == 2:
            event.set()  # as the CLI's signal handler would

    monkeypatch.setattr(AnnDataWriter, "append_rows", append_then_cancel)
    with pytest.raises(Cancelled, match="after 100 of 400 cells"):
        ns.thin_file(cells, tmp_path / "o.h5ad", 0.5, chunk_rows=50, cancel=event)
    assert written == [50, 50]
    assert not (tmp_path / "o.h5ad").exists() and leftovers(tmp_path) == []


# ---------------------------------------------------------------------------- kill -9


def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_sigkill_leaves_a_temporary_that_the_next_write_removes(cells, tmp_path):
    """SIGKILL cannot be caught: the hidden temporary stays, named after the dead process,
    and the next write to the same destination removes it."""
    from noisescale.io import temporaries

    src = tmp_path / "big.h5ad"
    ad.AnnData(random_counts(20000, 20, density=0.3, seed=2)).write_h5ad(src)
    out = tmp_path / "out.h5ad"
    proc = subprocess.Popen(
        [sys.executable, "-m", "noisescale", "thin", str(src), str(out), "--fraction", "0.5",
         "--chunk-rows", "1", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not leftovers(tmp_path):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.kill()
    proc.communicate(timeout=60)
    left = leftovers(tmp_path)
    assert len(left) == 1 and left[0].startswith(".out.h5ad.noisescale-tmp-")
    t = temporaries.parse(tmp_path / left[0])
    assert t.pid == proc.pid and t.host == temporaries.host() and t.abandoned
    assert not out.exists()
    # clean --dry-run lists it and removes nothing
    assert ns.io.remove_stale_temporaries(tmp_path, dry_run=True) == [tmp_path / left[0]]
    assert leftovers(tmp_path) == left
    # a live writer's temporary of the same destination is kept
    live = temporaries.temporary_path(out)
    live.write_bytes(b"being written")
    ns.thin_file(cells, out, 0.5)
    assert ad.read_h5ad(out).n_obs == 400
    assert leftovers(tmp_path) == [live.name]


def test_stale_temporaries_are_removed_only_when_abandoned_here(tmp_path):
    from noisescale.io import temporaries

    pid, here = dead_pid(), temporaries.host()
    sub = tmp_path / "sweep" / "jobs"
    sub.mkdir(parents=True)
    dead = tmp_path / f".a.zarr.noisescale-tmp-{here}-{pid}-0123456789ab"
    (dead / "X").mkdir(parents=True)                       # a zarr store being written
    nested = sub / f".j1.json.noisescale-tmp-{here}-{pid}-0123456789ab"
    nested.write_text("{")
    live = tmp_path / f".a.zarr.noisescale-tmp-{here}-{os.getpid()}-0123456789ab"
    live.write_text("")
    other = tmp_path / f".a.zarr.noisescale-tmp-node-17.cluster-{pid}-0123456789ab"
    other.write_text("")
    previous = tmp_path / f".b.h5ad.noisescale-old-{here}-{pid}-0123456789ab"
    previous.write_text("the previous b.h5ad; b.h5ad is missing")
    unrelated = tmp_path / ".a.zarr.noisescale-backup"
    unrelated.write_text("")
    assert {t.path for t in ns.io.find_temporaries(tmp_path)} == {
        dead, nested, live, other, previous}
    assert sorted(ns.io.remove_stale_temporaries(tmp_path)) == sorted([dead, nested])
    assert not dead.exists() and not nested.exists()
    assert live.exists() and other.exists() and previous.exists() and unrelated.exists()
    # once b.h5ad exists again, its moved-aside predecessor is garbage
    (tmp_path / "b.h5ad").write_text("new")
    assert ns.io.remove_stale_temporaries(tmp_path) == [previous]


def test_small_files_use_named_temporaries_and_remove_stale_ones(tmp_path):
    from noisescale.io import temporaries, write_atomic

    stale = tmp_path / f".r.csv.noisescale-tmp-{temporaries.host()}-{dead_pid()}-0123456789ab"
    stale.write_text("a,b\n1,")
    other = tmp_path / f".s.csv.noisescale-tmp-{temporaries.host()}-{dead_pid()}-0123456789ab"
    other.write_text("")
    write_atomic(tmp_path / "r.csv", "a,b\n1,2\n")
    assert (tmp_path / "r.csv").read_text() == "a,b\n1,2\n"
    assert not stale.exists() and other.exists()        # only that destination's
