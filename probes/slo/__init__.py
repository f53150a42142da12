"""SLOs and error budgets over probe results: Prometheus rules, their promtool tests, and a budget report."""
