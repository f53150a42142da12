"""Health endpoints only: the cheapest scenario, for smoke stages and for measuring the load generator.

Plain locustfile: `locust -f scenarios/health.py --host http://127.0.0.1:8000`, or
`probe-agent load --scenario health --host ...`. One request per task, grouped by path.
"""

from __future__ import annotations

from locust import FastHttpUser, task


class HealthUser(FastHttpUser):
    network_timeout = 10.0
    connection_timeout = 5.0

    @task(5)
    def health(self) -> None:
        self.client.get("/health", name="health")

    @task(2)
    def live(self) -> None:
        self.client.get("/health/live", name="health_live")

    @task(2)
    def ready(self) -> None:
        self.client.get("/health/ready", name="health_ready")
