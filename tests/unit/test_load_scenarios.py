"""Scenario resolution (bundled names, paths) and the Locust-free scenario helpers."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from probes.errors import UsageError
from probes.load import scenario_files
from scenarios import _shared


def test_bundled_scenarios_found_from_checkout() -> None:
    known = scenario_files.bundled()
    assert {"search", "health"} <= set(known)
    assert "_shared" not in known and "__init__" not in known
    name, path = scenario_files.resolve("search")
    assert name == "search" and path.name == "search.py" and path.is_file()


def test_env_var_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "_shared.py").write_text("")
    (tmp_path / "custom.py").write_text("")
    monkeypatch.setenv(scenario_files.ENV_VAR, str(tmp_path))
    assert scenario_files.resolve("custom") == ("custom", tmp_path / "custom.py")


def test_paths(tmp_path: Path) -> None:
    locustfile = tmp_path / "mine.py"
    locustfile.write_text("")
    assert scenario_files.resolve(str(locustfile)) == ("mine", locustfile.resolve())
    with pytest.raises(UsageError, match="no such file"):
        scenario_files.resolve(str(tmp_path / "missing.py"))
    text = tmp_path / "notes.txt"
    text.write_text("")
    with pytest.raises(UsageError, match=r"\.py"):
        scenario_files.resolve(str(text))


def test_unknown_name_lists_bundled() -> None:
    with pytest.raises(UsageError, match=r"unknown scenario.*health.*search"):
        scenario_files.resolve("nope")


def test_query_corpus() -> None:
    queries = _shared.load_queries()
    assert len(queries) >= 50 and "laptop" in queries
    assert not any(q.startswith("#") or not q.strip() for q in queries)


def test_corpus_file_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "q.txt"
    corpus.write_text("# comment\n\nfoo\n bar \n")
    monkeypatch.setenv("SEARCH_QUERIES", str(corpus))
    assert _shared.load_queries() == ["foo", "bar"]
    corpus.write_text("# nothing\n")
    with pytest.raises(ValueError, match="empty"):
        _shared.load_queries()


def test_response_parsers() -> None:
    payload = {"categories": [{"name": "laptops", "count": 3}, "phones", {"x": 1}]}
    assert _shared.parse_categories(payload) == ["laptops", "phones"]
    assert _shared.parse_categories(["a", "b"]) == ["a", "b"]
    assert _shared.parse_categories("garbage") == []
    hits = {"total": 2, "hits": [{"id": "sku-00042"}, {"id": 7}, {"title": "no id"}]}
    assert _shared.hit_ids(hits) == ["sku-00042", "7"]
    assert _shared.is_search_response(hits)
    assert not _shared.is_search_response({"hits": "x"})
    assert _shared.hit_ids(None) == []


def test_recent_ids_bounded() -> None:
    ids = _shared.RecentIds(size=3)
    rng = random.Random(1)
    assert ids.pick(rng) is None
    ids.add(["a", "b", "c", "d"])
    assert len(ids) == 3 and ids.pick(rng) in {"b", "c", "d"}
