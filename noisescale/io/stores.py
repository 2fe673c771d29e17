"""AnnData stores (.h5ad files, .zarr directories) read and written in row chunks.

:class:`CountsReader` opens a store read-only and hands out rows ``[a, b)`` of ``X`` or a layer
(CSR or dense) without loading the whole matrix. :class:`AnnDataWriter` builds a new store in a
hidden temporary sibling of the destination (named after the writing host and process, see
:mod:`.temporaries`) and renames it into place only on :meth:`AnnDataWriter.commit`, so a
failed or interrupted job never leaves a partial output and never touches an existing file
unless asked to replace it; the temporaries of a killed writer are removed by the next write
to the same destination. Elements are encoded with anndata's
own ``read_elem`` / ``write_elem``, so the outputs are ordinary AnnData stores.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .temporaries import clean_destination, temporary_path

#: Elements that annotate cells and genes and stay valid after the counts are thinned.
ANNOTATIONS = ("obs", "var", "obsm", "varm", "obsp", "varp")
_MAPPINGS = ("obsm", "varm", "obsp", "varp")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: HDF5 chunk length of appended sparse arrays: 1 MiB of float32, so reading them back costs
#: few chunk lookups (h5py's automatic choice for a small first block is ~45 KiB).
SPARSE_CHUNK = 1 << 18


def store_format(path: str | os.PathLike, *, existing: bool) -> str:
    """'h5ad' or 'zarr' for a path: by content when it exists, else by its suffix."""
    p = Path(path)
    if existing:
        if not p.exists():
            raise FileNotFoundError(f"input not found: {p}")
        if p.is_dir():
            if any((p / m).exists() for m in (".zgroup", "zarr.json")):
                return "zarr"
            raise ValueError(f"{p} is a directory but not a zarr store (no .zgroup or zarr.json)")
        with open(p, "rb") as fh:
            head = fh.read(256)
        if head[:8] == _HDF5_SIGNATURE:
            return "h5ad"
        raise ValueError(f"{p} is not an AnnData file: it is neither HDF5 (.h5ad) nor zarr "
                         f"({_what(head)})")
    suffix = p.suffix.lower()
    if suffix in (".h5ad", ".h5"):
        return "h5ad"
    if suffix == ".zarr":
        return "zarr"
    raise ValueError(f"output {p} must end in .h5ad or .zarr, which decides its format")


def _what(head: bytes) -> str:
    """What a file that is not a store seems to be, from its first bytes."""
    if not head:
        return "it is empty"
    for magic, kind in ((b"\x1f\x8b", "gzip-compressed"), (b"PK\x03\x04", "a zip archive"),
                        (b"\x93NUMPY", "a numpy .npy array"), (b"PAR1", "a Parquet table"),
                        (b"\x80", "a Python pickle")):
        if head.startswith(magic):
            return f"it is {kind}"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"it starts with the bytes {head[:16]!r}"
    first = text.splitlines()[0] if text.strip() else text
    return f"it is text starting {first[:60]!r}"


def anndata_format(path: str | os.PathLike) -> str:
    """'h5ad' or 'zarr' for an existing AnnData store; a ValueError that names the file and
    says what it is otherwise (not HDF5 or zarr, or HDF5/zarr without obs and var)."""
    p = Path(path)
    fmt = store_format(p, existing=True)
    try:
        root = _open_group(p, fmt, "r")
    except Exception as e:  # corrupt file, permissions, ...
        raise ValueError(f"cannot open {p} as an AnnData store: {e}") from e
    try:
        _check_obs_var(p, fmt, root)
    finally:
        if hasattr(root, "close"):
            root.close()
    return fmt


def _check_obs_var(path: Path, fmt: str, root) -> None:
    if "obs" not in root or "var" not in root:
        keys = sorted(root.keys())
        listed = ", ".join(map(repr, keys[:10])) + (", ..." if len(keys) > 10 else "")
        raise ValueError(f"{path} is an {'HDF5 file' if fmt == 'h5ad' else 'zarr store'} but "
                         f"not an AnnData store: it has no obs and var (top-level keys: "
                         f"{listed or 'none'})")


def _open_group(path: Path, fmt: str, mode: str, zarr_format: int | None = None):
    if fmt == "h5ad":
        import h5py

        return h5py.File(path, mode)
    import zarr

    if mode == "r":
        return zarr.open_group(path, mode="r")
    return zarr.open_group(path, mode=mode, zarr_format=zarr_format)


def _attr(node, key: str, default: Any = None) -> Any:
    value = node.attrs.get(key, default)
    return value.decode() if isinstance(value, bytes) else value


def _encoding(node) -> str:
    """anndata's encoding-type of a stored element ('csr_matrix', 'array', ...)."""
    enc = _attr(node, "encoding-type")
    if enc is not None:
        return str(enc)
    if hasattr(node, "shape") and len(node.shape) == 2:  # dense matrix from anndata < 0.8
        return "array"
    return "unknown"


class CountsReader:
    """A read-only AnnData store whose counts matrix is read in row chunks.

    Parameters
    ----------
    path
        ``.h5ad`` file or ``.zarr`` directory.
    layer
        Read ``layers[layer]`` instead of ``X``.
    """

    def __init__(self, path: str | os.PathLike, layer: str | None = None):
        self.path = Path(path)
        self.format = store_format(self.path, existing=True)
        self.layer = layer
        try:
            self._root = _open_group(self.path, self.format, "r")
        except Exception as e:  # corrupt file, permissions, ...
            raise ValueError(f"cannot open {self.path} as an AnnData store: {e}") from e
        try:
            self._locate()
        except BaseException:
            self.close()
            raise

    def _locate(self) -> None:
        root = self._root
        _check_obs_var(self.path, self.format, root)
        if self.layer is None:
            self.where = "X"
            if "X" not in root:
                raise KeyError(f"{self.path} has no X; pass layer= to name the counts layer")
            node = root["X"]
        else:
            self.where = f"layers[{self.layer!r}]"
            have = list(root["layers"].keys()) if "layers" in root else []
            if self.layer not in have:
                listed = ", ".join(map(repr, have)) or "none"
                raise KeyError(
                    f"layer {self.layer!r} not found in {self.path} (layers: {listed})")
            node = root["layers"][self.layer]
        enc = _encoding(node)
        if enc == "csc_matrix":
            raise ValueError(
                f"{self.where} in {self.path} is stored as CSC (by genes), which cannot be read "
                "by cells without loading it whole; rewrite it as CSR once, e.g. "
                "adata.X = adata.X.tocsr(); adata.write_h5ad(...)")
        if enc not in ("csr_matrix", "array"):
            raise ValueError(
                f"{self.where} in {self.path} has encoding {enc!r}; a CSR matrix or a dense "
                "array of counts is required")
        self.sparse = enc == "csr_matrix"
        self._node = node
        if self.sparse:
            shape = _attr(node, "shape")
            self.shape = (int(shape[0]), int(shape[1]))
            self._indptr = node["indptr"]
            self._indices = node["indices"]
            self._data = node["data"]
            self.dtype = np.dtype(self._data.dtype)
            self.nnz = int(self._indptr[self.shape[0]]) if self.shape[0] else 0
        else:
            if len(node.shape) != 2:
                raise ValueError(f"{self.where} in {self.path} is not 2-D (shape {node.shape})")
            self.shape = (int(node.shape[0]), int(node.shape[1]))
            self.dtype = np.dtype(node.dtype)
            self.nnz = self.shape[0] * self.shape[1]
        n_obs = self._n_index("obs")
        if n_obs is not None and n_obs != self.shape[0]:
            raise ValueError(
                f"{self.where} has {self.shape[0]} rows but obs has {n_obs} cells in {self.path}")

    def _n_index(self, key: str) -> int | None:
        group = self._root[key]
        index = _attr(group, "_index")
        if index is None or index not in group:
            return None
        return int(group[index].shape[0])

    @property
    def zarr_format(self) -> int | None:
        if self.format != "zarr":
            return None
        return int(self._root.metadata.zarr_format)

    def rows(self, start: int, stop: int, *, reuse: dict | None = None):
        """Rows ``[start, stop)`` as a scipy CSR matrix or a numpy array, dtypes as stored.

        With ``reuse`` (a dict owned by the caller), sparse arrays are read into buffers kept
        in it, so the result is only valid until the next call with the same dict.
        """
        if not 0 <= start <= stop <= self.shape[0]:
            raise IndexError(f"rows [{start}, {stop}) out of range for {self.shape[0]} rows")
        if not self.sparse:
            return np.asarray(self._node[start:stop])
        indptr = np.asarray(self._indptr[start:stop + 1])
        lo, hi = int(indptr[0]), int(indptr[-1])
        data = self._read(self._data, lo, hi, reuse, "data")
        indices = self._read(self._indices, lo, hi, reuse, "indices")
        indptr = indptr - indptr[0]
        if indices.dtype.kind == "u":  # anndata may store indices as the smallest unsigned type
            wide = np.int32 if indices.dtype.itemsize < 4 else np.int64
            indices = indices.astype(wide)
        if indptr.dtype != indices.dtype:
            indptr = indptr.astype(np.result_type(indptr.dtype, indices.dtype))
            indices = indices.astype(indptr.dtype, copy=False)
        out = sp.csr_matrix((data, indices, indptr), shape=(stop - start, self.shape[1]),
                            copy=False)
        if out.indices.dtype != indices.dtype:  # scipy narrows int64; keep the stored dtype
            out.indices, out.indptr = indices, indptr
        return out

    def entries_before(self) -> np.ndarray:
        """Stored entries before each row (``indptr``, int64, ``n_rows + 1`` values), read once
        and kept: what a selection of rows costs to read."""
        if getattr(self, "_offsets", None) is None:
            if self.sparse:
                self._offsets = np.asarray(self._indptr[:], dtype=np.int64)
            else:
                self._offsets = np.arange(self.shape[0] + 1, dtype=np.int64) * self.shape[1]
        return self._offsets

    def take(self, rows: np.ndarray, *, max_gap: int = 1 << 16):
        """The rows ``rows`` (sorted, unique) as one matrix, in that order.

        Runs of nearby rows are read in one piece (a gap of at most ``max_gap`` stored entries
        is read through); longer gaps are skipped, so a sparse selection does not read the
        whole store. Memory holds the selected rows plus one run's gaps.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows[0] < 0 or rows[-1] >= self.shape[0]
                          or np.any(np.diff(rows) <= 0)):
            raise IndexError(f"take: rows must be sorted, unique and in [0, {self.shape[0]})")
        if rows.size == 0:
            empty = self.rows(0, 0)
            return empty
        offsets = self.entries_before()
        gaps = offsets[rows[1:]] - offsets[rows[:-1] + 1]
        cuts = np.flatnonzero(gaps > max_gap) + 1
        pieces = []
        for run in np.split(rows, cuts):
            block = self.rows(int(run[0]), int(run[-1]) + 1)
            pieces.append(block[run - run[0]])
        if len(pieces) == 1:
            return pieces[0]
        return sp.vstack(pieces, format="csr") if self.sparse else np.concatenate(pieces)

    def _read(self, array, lo: int, hi: int, reuse: dict | None, name: str) -> np.ndarray:
        if reuse is None or not hasattr(array, "read_direct"):
            return np.asarray(array[lo:hi])
        # h5py: read straight into a kept buffer (no fresh pages to fault in per chunk).
        buf = reuse.get(name)
        if buf is None or buf.shape[0] < hi - lo:
            buf = reuse[name] = np.empty(int((hi - lo) * 1.25) + 1, dtype=array.dtype)
        if hi > lo:
            array.read_direct(buf, np.s_[lo:hi], np.s_[0:hi - lo])
        return buf[:hi - lo]

    def keys(self, mapping: str) -> list[str]:
        """Keys stored under an element such as 'obsm' (empty when absent)."""
        return list(self._root[mapping].keys()) if mapping in self._root else []

    def read(self, key: str) -> Any:
        """One element (path like 'obs' or 'obsm/X_pca') decoded by anndata."""
        from anndata.io import read_elem

        return read_elem(self._root[key])

    def obs_column(self, name: str) -> np.ndarray:
        """One numeric obs column, read on its own."""
        columns = list(_attr(self._root["obs"], "column-order", []))
        if name not in columns:
            raise KeyError(f"obs column {name!r} not found in {self.path} "
                           f"(columns: {', '.join(map(repr, columns)) or 'none'})")
        values = np.asarray(self.read(f"obs/{name}"))
        if values.dtype.kind not in "iuf":
            raise TypeError(f"obs column {name!r} must be numeric, got dtype {values.dtype}")
        return values

    def has(self, key: str) -> bool:
        return key in self._root

    def close(self) -> None:
        root, self._root = getattr(self, "_root", None), None
        if root is not None and hasattr(root, "close"):
            root.close()

    def __enter__(self) -> CountsReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_disk_full(e: BaseException) -> bool:
    text = str(e)
    return (getattr(e, "errno", None) == errno.ENOSPC or "No space left" in text
            or "errno = 28" in text)


class AnnDataWriter:
    """A new AnnData store, written in a temporary sibling and moved into place on commit.

    Parameters
    ----------
    path
        Destination ``.h5ad`` or ``.zarr``; the suffix decides the format.
    overwrite
        Replace an existing destination on commit (never before).
    zarr_format
        2 or 3 for zarr outputs (default: anndata's setting).
    compression
        h5ad only: ``None``, ``"gzip"`` or ``"lzf"`` for the counts matrix.
    """

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = False,
                 zarr_format: int | None = None, compression: str | None = None):
        self.path = Path(path)
        self.format = store_format(self.path, existing=False)
        if compression not in (None, "gzip", "lzf"):
            raise ValueError(f"compression must be None, 'gzip' or 'lzf', got {compression!r}")
        if compression is not None and self.format != "h5ad":
            raise ValueError("compression= applies to .h5ad outputs only")
        self._dataset_kwargs: dict[str, Any] = {"compression": compression} if compression else {}
        check_destination(self.path, overwrite)
        self.overwrite = overwrite
        if zarr_format is None and self.format == "zarr":
            import anndata

            zarr_format = int(anndata.settings.zarr_write_format)
        clean_destination(self.path)  # what a killed writer left
        self.tmp = temporary_path(self.path)
        self._root = _open_group(self.tmp, self.format, "w-", zarr_format)
        self._root.attrs["encoding-type"] = "anndata"
        self._root.attrs["encoding-version"] = "0.1.0"
        self._rows: dict[str, int] = {}

    def write(self, key: str, value: Any) -> None:
        """Write one element (an anndata-encodable value) under ``key``."""
        from anndata.io import write_elem

        parent, name = self._parent(key)
        self._guard(lambda: write_elem(parent, name, value))

    def append_rows(self, key: str, block) -> None:
        """Append a row block (CSR or dense) to the matrix at ``key``, creating it first."""
        from anndata.io import sparse_dataset, write_elem

        parent, name = self._parent(key)
        if key not in self._rows:
            kwargs = dict(self._dataset_kwargs)
            if self.format == "h5ad" and sp.issparse(block):
                kwargs["chunks"] = (SPARSE_CHUNK,)
            elif self.format == "h5ad":
                kwargs["maxshape"] = (None, block.shape[1])
            self._guard(lambda: write_elem(parent, name, block, dataset_kwargs=kwargs))
        elif sp.issparse(block):
            self._guard(lambda: sparse_dataset(parent[name]).append(block))
        else:
            start = self._rows[key]
            arr = parent[name]

            def grow():
                arr.resize((start + block.shape[0], block.shape[1]))
                arr[start:start + block.shape[0]] = block

            self._guard(grow)
        self._rows[key] = self._rows.get(key, 0) + block.shape[0]

    def _parent(self, key: str):
        parent_key, _, name = key.rpartition("/")
        if not parent_key:
            return self._root, name
        if parent_key not in self._root:
            self.write(parent_key, {})
        return self._root[parent_key], name

    def _guard(self, fn) -> None:
        try:
            fn()
        except OSError as e:
            if _is_disk_full(e):
                free = shutil.disk_usage(self.tmp.parent).free
                raise OSError(
                    errno.ENOSPC,
                    f"disk full while writing {self.path} ({free / 2**30:.2f} GiB free in "
                    f"{self.tmp.parent}); the partial output will be removed") from e
            raise

    def commit(self) -> Path:
        """Close the store and move it to its destination (replacing it if overwrite=True)."""
        self._close()
        old = None
        if self.path.exists() or self.path.is_symlink():
            check_destination(self.path, self.overwrite)
            old = temporary_path(self.path, "old")
            os.replace(self.path, old)
        os.replace(self.tmp, self.path)
        if old is not None:
            _remove(old)
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary store; the destination is left as it was."""
        self._close()
        _remove(self.tmp)

    def _close(self) -> None:
        root, self._root = self._root, None
        if root is not None and hasattr(root, "close"):
            root.close()

    def __enter__(self) -> AnnDataWriter:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None or self._root is not None:
            self.abort()


def copy_annotations(reader: CountsReader, writer: AnnDataWriter) -> None:
    """Copy obs, var, obsm, varm, obsp and varp from one store to another."""
    for key in ANNOTATIONS:
        if not reader.has(key):
            continue
        if key in _MAPPINGS:  # element by element, so memory holds one at a time
            writer.write(key, {})
            for name in reader.keys(key):
                writer.write(f"{key}/{name}", reader.read(f"{key}/{name}"))
        else:
            writer.write(key, reader.read(key))


def check_destination(path: Path, overwrite: bool) -> None:
    """Refuse a missing parent directory, and an existing path unless ``overwrite``."""
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output directory does not exist: {path.parent}")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True (--overwrite) "
                              "to replace it")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
