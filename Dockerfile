# gridledger node image: multi-stage, non-root, pinned (base image tag, Python packages by
# constraints.txt). Not built in CI (no container engine there); tests/ops/test_compose.py checks
# that compose.yaml runs the same services, commands and settings as `gridledger stack up`.

# -- build: wheels of gridledger and its pinned dependencies ----------------------------------
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md LICENSE ./
COPY src ./src
RUN python -m venv /opt/gridledger \
 && /opt/gridledger/bin/pip install -c constraints.txt .

# -- run: the virtual environment only, as an unprivileged user ---------------------------------
FROM python:3.11.11-slim-bookworm AS run
RUN groupadd --system --gid 10001 gridledger \
 && useradd --system --uid 10001 --gid gridledger --home-dir /var/lib/gridledger --create-home gridledger
COPY --from=build /opt/gridledger /opt/gridledger
ENV PATH=/opt/gridledger/bin:$PATH PYTHONUNBUFFERED=1
USER gridledger
WORKDIR /var/lib/gridledger
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=6 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"]
ENTRYPOINT ["gridledger"]
CMD ["node"]
