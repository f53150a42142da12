"""The theoretical time from injection to firing (and to notification) of one alert.

After the fault starts, the changed value lands in Prometheus at the next scrape (<= one scrape interval;
a rate()/increase() over a counter series that the fault creates needs a second sample, one more interval);
the rule group picks it up at its next evaluation (<= one evaluation interval) and the alert goes pending;
it fires at the first evaluation at least `for` later (`for` rounded up to whole evaluation intervals);
Alertmanager then holds a new group for `group_wait` before it notifies.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from probes.drills.prometheus import AlertRule, ScrapeTiming

_RANGE_SELECTOR = re.compile(r"\[\s*\d+[a-z]+(\s*:\s*\d*[a-z]*)?\s*\]")


@dataclass(frozen=True)
class Bound:
    scrape_interval: float
    evaluation_interval: float
    for_seconds: float
    group_wait: float | None
    needs_two_samples: bool

    @property
    def firing_min(self) -> float:
        return self.for_seconds

    @property
    def firing(self) -> float:
        scrapes = 2 if self.needs_two_samples else 1
        evaluations = math.ceil(self.for_seconds / self.evaluation_interval - 1e-9) if self.for_seconds else 0
        return (
            scrapes * self.scrape_interval + self.evaluation_interval + evaluations * self.evaluation_interval
        )

    @property
    def notified(self) -> float | None:
        return None if self.group_wait is None else self.firing + self.group_wait


def compute(rule: AlertRule, timing: ScrapeTiming, labels: dict[str, str], group_wait: float | None) -> Bound:
    evaluation = rule.group_interval or timing.evaluation_interval
    return Bound(
        scrape_interval=timing.for_alert(labels, rule.query),
        evaluation_interval=evaluation,
        for_seconds=rule.for_seconds,
        group_wait=group_wait,
        needs_two_samples=_RANGE_SELECTOR.search(rule.query) is not None,
    )
