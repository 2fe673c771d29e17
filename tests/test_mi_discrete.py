"""Ross's estimator for continuous x and categorical labels, and the one-hot/LMI route."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from noisescale.mi import mi_discrete, one_hot


def clusters(n_per, n_classes, d, sep, seed):
    rng = np.random.default_rng(seed)
    centers = sep * rng.standard_normal((n_classes, d))
    labels = np.repeat(np.arange(n_classes), n_per)
    x = centers[labels] + rng.standard_normal((labels.size, d))
    return x, labels


@pytest.mark.parametrize("n_classes", [2, 4, 7])
def test_well_separated_clusters_give_log2_classes(n_classes):
    x, labels = clusters(600, n_classes, 3, sep=40.0, seed=n_classes)
    est = mi_discrete(x, labels)
    assert abs(est - np.log2(n_classes)) < 0.01


def test_unbalanced_separated_clusters_give_label_entropy():
    rng = np.random.default_rng(2)
    sizes = np.array([2000, 500, 100])
    labels = np.repeat(np.array(["a", "b", "c"]), sizes)
    x = np.where(labels == "a", 0.0, np.where(labels == "b", 50.0, -50.0))[:, None]
    x = x + rng.standard_normal((labels.size, 2))
    p = sizes / sizes.sum()
    assert abs(mi_discrete(x, labels) - (-(p * np.log2(p)).sum())) < 0.01


def test_independent_labels_near_zero():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6000, 4))
    labels = rng.integers(0, 5, size=6000)
    assert abs(mi_discrete(x, labels)) < 0.03


def test_partial_overlap_matches_sklearn():
    """In one dimension Ross's estimator is what scikit-learn's mutual_info_classif computes
    (in nats, after a tie-breaking noise that does not change counts on tie-free data)."""
    import sklearn.feature_selection as sklearn
    x, labels = clusters(800, 3, 1, sep=1.5, seed=4)
    ours = mi_discrete(x, labels, k=3, jitter=0)
    theirs = sklearn.mutual_info_classif(x, labels, discrete_features=False, n_neighbors=3,
                                         random_state=0)[0]
    assert ours > 0.2
    assert abs(ours * np.log(2) - theirs) < 1e-9


def test_labels_of_any_type_and_singletons():
    x, labels = clusters(300, 3, 2, sep=30.0, seed=5)
    codes = mi_discrete(x, labels, pointwise=True)
    names = mi_discrete(x, pd.Categorical(np.array(["t0", "t1", "t2"])[labels]), pointwise=True)
    assert np.array_equal(codes, names)
    # A label seen once is left out (NaN), a label with <= k samples uses k = N_c - 1.
    lab = labels.astype(object)
    lab[0] = "only-one"
    lab[1:3] = "pair"
    vals = mi_discrete(x, lab, pointwise=True)
    assert np.isnan(vals[0]) and np.isfinite(vals[1:]).all()


def test_one_hot():
    oh = one_hot(["b", "a", "b", "c"])
    assert oh.dtype == np.float32
    assert np.array_equal(oh, [[0, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])


def test_lmi_route_runs():
    x, labels = clusters(400, 4, 6, sep=20.0, seed=6)
    est = mi_discrete(x, labels, method="lmi", epochs=40, patience=10)
    assert 1.4 < est < 2.3  # log2(4) = 2 within LMI's error at 800 held-out samples


def test_bad_input():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="one entry per sample"):
        mi_discrete(x, np.zeros(9))
    with pytest.raises(ValueError, match="missing value"):
        mi_discrete(np.arange(10.0), np.array([1, 2, None, 1, 2, 1, 2, 1, 2, 1], dtype=object))
    with pytest.raises(ValueError, match="single sample"):
        mi_discrete(np.arange(10.0), np.arange(10))
    with pytest.raises(ValueError, match="method must be"):
        mi_discrete(np.arange(10.0), np.arange(10) % 2, method="knn")
    with pytest.raises(TypeError, match="unexpected arguments"):
        mi_discrete(np.arange(10.0), np.arange(10) % 2, epochs=3)
