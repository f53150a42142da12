# probe-agent: the agent, the demo API, load and drill commands. The rules and example configs are package
# data, so `probe-agent demo --drill` works in the image too (given prometheus and alertmanager binaries).
#   docker build -t probe-agent .
#   docker run --rm -v $PWD/agent.yaml:/etc/probe-agent/agent.yaml:ro -p 127.0.0.1:9464:9464 probe-agent

# Build the wheels apart, so that no compiler, source tree or pip cache reaches the final image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY probes ./probes
COPY scenarios ./scenarios
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin probe
# A bind mount of the wheels instead of a COPY: they are installed, never stored in a layer.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels probe-agent
USER 10001
EXPOSE 9464
# The agent's liveness endpoint; containers running another command of the image set their own URL.
ENV PROBE_AGENT_HEALTH_URL=http://127.0.0.1:9464/-/healthy
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['PROBE_AGENT_HEALTH_URL'], timeout=4)"]
ENTRYPOINT ["probe-agent"]
CMD ["run", "--config", "/etc/probe-agent/agent.yaml", "--listen", "0.0.0.0:9464"]
