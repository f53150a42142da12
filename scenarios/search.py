"""A realistic search user for the demo search API, or any API shaped like it.

Plain locustfile: `locust -f scenarios/search.py --host http://127.0.0.1:8000`, or
`probe-agent load --scenario search --host ...`. Each task makes exactly one request, so a target task
rate (`probe-agent load --rate`) is a target request rate. Requests are grouped by `name=` so the
stats and thresholds are per endpoint (`search:p95<300ms`), not per URL.

Options (Locust arguments, also via env): `--think-time SECONDS` upper bound of a uniform pause between
tasks (default 0: a closed loop, as fast as the API answers); `SEARCH_QUERIES` another query corpus.
"""

from __future__ import annotations

import random
from typing import Any

from _shared import DEFAULT_CATEGORIES, RecentIds, hit_ids, is_search_response, load_queries, parse_categories
from locust import FastHttpUser, events, task

QUERIES = load_queries()


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--think-time",
        type=float,
        default=0.0,
        env_var="SEARCH_THINK_TIME",
        help="search scenario: pause up to this many seconds (uniformly) between tasks",
    )


class SearchUser(FastHttpUser):
    # A slow answer is a measurement, a hung one is a failure: don't wait Locust's default minute.
    network_timeout = 10.0
    connection_timeout = 5.0

    def wait_time(self) -> float:
        think = getattr(self.environment.parsed_options, "think_time", 0.0) or 0.0
        return random.random() * think if think > 0 else 0.0

    def on_start(self) -> None:
        self.rng = random.Random()
        self.ids = RecentIds()
        self.categories = list(DEFAULT_CATEGORIES)
        with self.client.get("/api/categories", name="categories", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
                return
            try:
                names = parse_categories(response.json())
            except ValueError:
                response.failure("categories: not JSON")
                return
            if names:
                self.categories = names

    def _search(self, params: dict[str, Any], name: str) -> None:
        with self.client.get("/api/search", params=params, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
                return
            try:
                payload = response.json()
            except ValueError:
                response.failure("search: not JSON")
                return
            if not is_search_response(payload):
                response.failure("search: no 'hits' list or 'total' in the response")
                return
            self.ids.add(hit_ids(payload))

    @task(10)
    def search(self) -> None:
        self._search({"q": self.rng.choice(QUERIES), "limit": 10}, "search")

    @task(4)
    def search_filtered(self) -> None:
        params = {"q": self.rng.choice(QUERIES), "category": self.rng.choice(self.categories), "limit": 10}
        self._search(params, "search_filtered")

    @task(3)
    def search_page(self) -> None:
        params = {"q": self.rng.choice(QUERIES), "limit": 10, "offset": self.rng.choice((10, 20, 30))}
        self._search(params, "search_page")

    @task(3)
    def item(self) -> None:
        item_id = self.ids.pick(self.rng)
        if item_id is None:
            # Nothing seen yet: a user searches before opening a document.
            self.search()
            return
        with self.client.get(f"/api/items/{item_id}", name="item", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")

    @task(1)
    def health(self) -> None:
        self.client.get("/health", name="health")
