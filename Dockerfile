# Digit Lab lab instance: one container serving the dashboard to a class.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    DIGITLAB_RUN_ROOT=/data/runs \
    DIGITLAB_DATA_DIR=/data/datasets \
    DIGITLAB_CACHE_DIR=/data/cache \
    DIGITLAB_MAX_JOBS=1 \
    DIGITLAB_MAX_UPLOAD_MB=200

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY app.py ./
COPY .streamlit ./.streamlit
COPY core ./core
COPY pages ./pages
COPY ui ./ui

RUN useradd --create-home --uid 10001 lab \
    && mkdir -p /data/runs /data/datasets /data/cache \
    && chown -R lab:lab /data
USER lab
VOLUME ["/data"]
EXPOSE 8501

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read() != b'ok')"

# Shell form so the upload limit comes from the environment at start.
CMD exec streamlit run app.py --server.port 8501 --server.address 0.0.0.0 \
    --server.headless true --server.maxUploadSize "${DIGITLAB_MAX_UPLOAD_MB}"
