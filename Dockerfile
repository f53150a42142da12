FROM python:3.11-slim

# The package only; Prometheus and Alertmanager run as their own containers (deploy/compose.yaml).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY probes ./probes
COPY scenarios ./scenarios
RUN pip install --no-cache-dir . && useradd --system --uid 10001 probe
USER probe
EXPOSE 9464
ENTRYPOINT ["probe-agent"]
CMD ["run", "--config", "/etc/probe-agent/agent.yaml", "--listen", "0.0.0.0:9464"]
