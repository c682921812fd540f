# Digit Lab lab instance: one container serving the dashboard to a class.
#   docker build -t digit-lab .
#   docker run -p 8501:8501 -v digitlab-data:/data -e DIGITLAB_MAX_JOBS=2 digit-lab
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    TF_CPP_MIN_LOG_LEVEL=2 \
    DIGITLAB_RUN_ROOT=/data/runs \
    DIGITLAB_DATA_DIR=/data/datasets \
    DIGITLAB_CACHE_DIR=/data/cache \
    DIGITLAB_MAX_JOBS=1 \
    DIGITLAB_MAX_UPLOAD_MB=200

# tini as PID 1: forwards docker stop's SIGTERM to Streamlit and reaps orphaned processes, which
# a Python PID 1 leaves as zombies.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt

# Code stays owned by root: the server runs as "lab" and cannot rewrite it.
COPY app.py ./
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
CMD exec streamlit run app.py --server.port 8501 --server.address 0.0.0.0 \
    --server.headless true --server.fileWatcherType none --browser.gatherUsageStats false \
    --server.maxUploadSize "${DIGITLAB_MAX_UPLOAD_MB:-200}"
