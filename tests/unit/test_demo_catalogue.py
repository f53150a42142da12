"""The demo catalogue: stable data and ranking that golden-query probes can rely on."""

from __future__ import annotations

from probes.demo.catalogue import ITEM_COUNT, Catalogue, _generate, default_catalogue, tokenize


def ids(catalogue: Catalogue, query: str, **kwargs: object) -> list[str]:
    return [hit.item.id for hit in catalogue.search(query, **kwargs).hits]  # type: ignore[arg-type]


def test_the_catalogue_is_the_same_on_every_build() -> None:
    assert _generate() == _generate()
    assert len(default_catalogue().items) == ITEM_COUNT
    assert default_catalogue().items[0].id == "sku-00001"
    assert default_catalogue().items[-1].id == f"sku-{ITEM_COUNT:05d}"


def test_laptop_query_ranks_the_golden_item_in_the_top_ten() -> None:
    catalogue = default_catalogue()
    result = catalogue.search("laptop", limit=10)
    assert result.total > 100
    assert "sku-00042" in [hit.item.id for hit in result.hits]
    assert catalogue.by_id["sku-00042"].category == "laptops"
    assert all(hit.item.category == "laptops" for hit in result.hits)
    scores = [hit.score for hit in result.hits]
    assert scores == sorted(scores, reverse=True)


def test_phone_query_finds_phones_first() -> None:
    result = default_catalogue().search("phone", limit=10)
    assert result.total > 100
    assert all(hit.item.category == "phones" for hit in result.hits)


def test_plurals_and_case_do_not_matter() -> None:
    catalogue = default_catalogue()
    assert ids(catalogue, "Laptops") == ids(catalogue, "laptop")
    assert tokenize("Wireless Headphones") == ["wireless", "headphone"]


def test_category_filter_and_paging() -> None:
    catalogue = default_catalogue()
    result = catalogue.search("wireless", category="mice", limit=100)
    assert result.total > 0
    assert all(hit.item.category == "mice" for hit in result.hits)
    first_page, second_page = ids(catalogue, "laptop", limit=5), ids(catalogue, "laptop", limit=5, offset=5)
    assert ids(catalogue, "laptop", limit=10) == first_page + second_page


def test_an_empty_query_matches_everything_and_an_unknown_word_nothing() -> None:
    catalogue = default_catalogue()
    assert catalogue.search("").total == ITEM_COUNT
    assert ids(catalogue, "", limit=3) == ["sku-00001", "sku-00002", "sku-00003"]
    assert catalogue.search("zzzyx").total == 0
