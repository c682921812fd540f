# Two entry points: `make run` (the dashboard) and `make test` (the whole suite).
# The image: `make image` builds it, `make image-test` builds it and checks the running container.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8501
ADDRESS ?= 127.0.0.1
IMAGE  ?= digit-lab
# The lab's own Ray, a set of processes of its own that outlive the dashboard: restarting the
# server (a setting changed, an upgrade, a crash) leaves the runs in flight training, and the
# restarted server collects them. Loopback only (every Ray server on 127.0.0.1, whatever ADDRESS
# the dashboard gets) and Ray's token authentication with the lab's token (made once in the cache
# folder, or DIGITLAB_RAY_TOKEN): tools/lab_ray.py holds the command line.
# `make ray-stop` ends it (and its runs). RAY_PORT + 1 is its (unused, loopback) ray:// port.
RAY_PORT ?= 6390
RAY_ADDRESS := 127.0.0.1:$(RAY_PORT)
RAY_ENV := RAY_USAGE_STATS_ENABLED=0

# The container engine: docker where it has an engine, else podman (same arguments), else none.
# Decided once, on first use (`make DOCKER=podman ...` skips the probe).
ifeq ($(origin DOCKER),undefined)
DOCKER = $(eval DOCKER := $(shell if docker info >/dev/null 2>&1; then echo docker; \
  elif podman info >/dev/null 2>&1; then echo podman; fi))$(DOCKER)
endif
NO_ENGINE := echo "skipped: no container engine works here (docker info and podman info both failed); install Docker or Podman"

.PHONY: run ray ray-stop test lint install install-dev browser postgres bench clean image image-test

# The editable install (pyproject.toml) puts this checkout on the venv's path: core, ui, tools,
# bench and tests import from any directory, with no sys.path tricks.
$(BIN)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet -e . --no-deps
	touch $@

# The test tools on top of the runtime (requirements-dev.txt includes requirements.txt).
$(BIN)/.installed-dev: $(BIN)/.installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed
install-dev: $(BIN)/.installed-dev

run: install ray
	DIGITLAB_RAY_ADDRESS=$(RAY_ADDRESS) $(BIN)/streamlit run serve.py --server.port $(PORT) --server.address $(ADDRESS)

# Start the lab's Ray unless it answers already (then it is reused, with whatever it is training).
ray: install
	@$(RAY_ENV) $(BIN)/python -m tools.lab_ray start --port $(RAY_PORT)

# Ends this lab's Ray only (`ray stop` would end every Ray of this user on the machine).
ray-stop: install
	@$(RAY_ENV) $(BIN)/python -m tools.lab_ray stop --port $(RAY_PORT)

# Debian's chromium for the end-to-end browser tests (Playwright drives it; it never downloads one).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: run 'sudo apt-get install chromium' (browser tests will skip)"; fi; }

# Debian's PostgreSQL for the store's tests on a real server (a fixture starts a throwaway one on
# loopback; the lab itself needs none: SQLite unless DIGITLAB_DATABASE_URL is set).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; \
	  else echo "postgresql missing: run 'sudo apt-get install postgresql' (PostgreSQL tests will skip)"; fi; }

# Two processes: much of the suite waits on servers, Ray and the browser (19 min serial, 11 with two).
# A crashed test process ends the run at once with that test named (xdist's restarts could hang it).
test: install-dev browser postgres
	$(BIN)/python -m pytest -n 2 --dist loadfile --max-worker-restart=0

# Style and type gates (settings in pyproject.toml); the whole tree passes them.
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check core ui pages app.py serve.py tools bench tests
	$(BIN)/mypy

bench: install-dev
	for b in generate load preprocess train jobs eta restart load_sessions load_training fuzz_links first_page embedding inside first_run preview_load real_data replicas; do \
	  echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py || exit 1; done

# podman needs --format docker to keep the HEALTHCHECK (its default OCI format drops it).
image:
	@if [ -z "$(DOCKER)" ]; then $(NO_ENGINE); else \
	  set -x; $(DOCKER) build $(if $(findstring podman,$(DOCKER)),--format docker) -t $(IMAGE) . ; fi

# The real image's tests (tests/test_image.py, marker "image"), then the one-line check, printed last.
# browser: the compose.school.yaml test signs a student in through the proxy in Chromium.
image-test: install-dev browser image
	@if [ -z "$(DOCKER)" ]; then $(NO_ENGINE); else \
	  DOCKER=$(DOCKER) DIGITLAB_IMAGE=$(IMAGE) $(BIN)/python -m pytest -m image tests/test_image.py \
	    -k "not check_script" \
	  && DOCKER=$(DOCKER) $(BIN)/python tools/image_check.py --image $(IMAGE); fi

clean:
	rm -rf $(VENV) .pytest_cache
