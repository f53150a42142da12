"""Answer fingerprints: equal answers agree in every process, different answers differ, and the value
survives the float64 trip through Prometheus."""

from __future__ import annotations

import subprocess
import sys

from probes.fingerprint import BITS, answer_details, fingerprint, top_ids

IDS = [f"sku-{i:05d}" for i in range(10)]


def test_order_matters() -> None:
    assert fingerprint(IDS) != fingerprint(list(reversed(IDS)))
    assert fingerprint(IDS[:9]) != fingerprint(IDS)
    assert fingerprint(IDS) == fingerprint(list(IDS))


def test_the_total_counts_only_when_asked() -> None:
    assert fingerprint(IDS, 10) == fingerprint(IDS, 99)
    assert fingerprint(IDS, 10, with_total=True) != fingerprint(IDS, 99, with_total=True)


def test_fits_52_bits_and_is_exact_as_a_float64() -> None:
    for n in range(200):
        value = fingerprint([str(n)])
        assert 0 <= value < 2**BITS
        assert int(float(value)) == value
        assert int(float(repr(float(value)))) == value  # as written on /metrics and read back


def test_stable_across_processes_and_hash_seeds() -> None:
    code = "from probes.fingerprint import fingerprint; print(fingerprint(['a', 'b', 'c'], 3, with_total=True))"
    values = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": seed}).stdout.strip()
        for seed in ("1", "2")
    }
    assert values == {str(fingerprint(["a", "b", "c"], 3, with_total=True))}


def test_top_ids_reads_the_first_k_ids_as_text() -> None:
    hits = [{"id": 1}, {"id": "b"}, {"title": "no id"}, "not a hit", {"id": "e"}]
    assert top_ids(hits, "id", 4) == ["1", "b", None, None]
    assert top_ids(None, "id", 10) == []


def test_answer_details_keep_what_diff_needs() -> None:
    details = answer_details([{"sku": "x"}, {"sku": "y"}], 7, id_field="sku", top_k=10, with_total=False)
    assert details == {"fingerprint": fingerprint(["x", "y"]), "top_ids": ["x", "y"], "total": 7}
