# Digit Lab lab instance: one container serving the dashboard to a class; the same image runs the
# Ray head and workers of compose.yaml.
#   docker build -t digit-lab .
#   docker run -p 8501:8501 --shm-size=512m -v digitlab-data:/data digit-lab

# ---- build: the runtime requirements in a virtualenv, trimmed of what nothing imports ------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# Only requirements.txt (the runtime): the test tools live in requirements-dev.txt.
# Trimmed here, in the stage the image does not keep, so the deleted files cost no layer:
# TensorFlow's C++ headers and libclang only build custom ops, Ray's jars only run Java workers,
# and the libraries' own test suites are never imported.
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt \
    && /opt/venv/bin/pip uninstall -y libclang \
    && cd /opt/venv/lib/python3.11/site-packages \
    && rm -rf tensorflow/include ray/jars \
    && find numpy pandas pyarrow scipy sklearn -depth -type d -name tests -exec rm -rf {} +

# ---- the image ------------------------------------------------------------------------------------
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    DIGITLAB_RUN_ROOT=/data/runs \
    DIGITLAB_DATA_DIR=/data/datasets \
    DIGITLAB_CACHE_DIR=/data/cache \
    DIGITLAB_MAX_JOBS=0 \
    DIGITLAB_MAX_UPLOAD_MB=200 \
    RAY_AUTH_MODE=token
# RAY_AUTH_MODE=token: every Ray in this image uses Ray's token authentication. The lab's own Ray
# (no DIGITLAB_RAY_ADDRESS) gets a token made once in /data/cache/ray-token and listens on loopback;
# compose's head and workers (`ray start`) refuse to start without RAY_AUTH_TOKEN.

# tini as PID 1: forwards docker stop's SIGTERM to Streamlit and reaps orphaned processes, which
# a Python PID 1 leaves as zombies. apt-get clean: no package caches left in the layer.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

COPY --from=build /opt/venv /opt/venv

# Code stays owned by root: the server runs as "lab" and cannot rewrite it. PYTHONPATH=/app lets
# Ray's worker processes (started from the Ray node, not from /app) import core too.
WORKDIR /app
COPY app.py serve.py ./
COPY .streamlit ./.streamlit
COPY core ./core
COPY pages ./pages
COPY ui ./ui
RUN python -m compileall -q core ui pages app.py

# A numeric user, so an orchestrator enforcing runAsNonRoot can verify it.
RUN groupadd --gid 10001 lab \
    && useradd --uid 10001 --gid 10001 --create-home --no-log-init lab \
    && mkdir -p /data/runs /data/datasets /data/cache \
    && chown -R 10001:10001 /data
USER 10001:10001
# Runs, uploads and generated datasets live here; mount a volume to keep them.
VOLUME ["/data"]
EXPOSE 8501

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read() != b'ok')"

ENTRYPOINT ["tini", "--"]
# Shell form so the upload limit comes from the environment at start (exec: Streamlit gets the signals).
CMD exec streamlit run serve.py --server.port 8501 --server.address 0.0.0.0 \
    --server.headless true --server.fileWatcherType none --browser.gatherUsageStats false \
    --server.maxUploadSize "${DIGITLAB_MAX_UPLOAD_MB:-200}"
