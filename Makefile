# Two commands on a fresh machine: `make demo` and `make test`. Each creates its venv first.
# One venv per supported Blender (the PyPI bpy module): BLENDER=4.5|5.0|5.2 make test;
# `make test-all` runs the suite on every one. The default is the newest LTS.
DEFAULT_BLENDER := 5.2
BLENDER ?= $(DEFAULT_BLENDER)
SUPPORTED_BLENDERS := 4.5 5.0 5.2
# The Python each PyPI bpy is built for (one constraints file per Blender pins bpy and numpy).
PYTHON_VERSION_4.5 := 3.11
PYTHON_VERSION_5.0 := 3.11
PYTHON_VERSION_5.2 := 3.13
PYTHON_VERSION := $(PYTHON_VERSION_$(BLENDER))
ifeq ($(PYTHON_VERSION),)
$(error BLENDER=$(BLENDER) is not supported; choose one of: $(SUPPORTED_BLENDERS))
endif
# PYTHON=/path/to/pythonX.Y overrides the search (tools/find-python: PATH, pyenv, /usr/bin).
PYTHON ?=
VENV := .venv-$(BLENDER)
PY := $(VENV)/bin/python
CONSTRAINTS := constraints/blender-$(BLENDER).txt
STAMP := $(VENV)/.parascale-installed
# Blender's extension tool ships inside the bpy package, under its version folder.
FIND_BLENDER_EXT := import glob, importlib.util, os; root = importlib.util.find_spec("bpy").submodule_search_locations[0]; print(*glob.glob(os.path.join(root, "*", "scripts", "addons_core", "bl_pkg", "cli", "blender_ext.py")))
BLENDER_EXT = $(PY) "$$($(PY) -c '$(FIND_BLENDER_EXT)')"
PARASCALE_DATA ?= $(abspath ../shared/data)
OUT ?= out
OPENCV_WHEEL := opencv-python-headless==4.11.0.86
# The wheel's tag is cp37-abi3: one wheel per platform serves Python 3.11 and 3.13 alike.
WHEEL_PLATFORMS := manylinux2014_x86_64 win_amd64 macosx_13_0_arm64 macosx_13_0_x86_64
# pycolmap (video tracking) has one wheel per platform and Python; none for Intel macOS.
PYCOLMAP_WHEEL := pycolmap==4.2.1
PYCOLMAP_PLATFORMS := manylinux_2_28_x86_64 win_amd64 macosx_14_0_arm64

.PHONY: setup demo test bench zip validate clean
.PHONY: test-all test-quick wheels zip-here

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt $(CONSTRAINTS) pyproject.toml
	@test -x $(PY) || { py="$(PYTHON)"; \
	    [ -n "$$py" ] || py=$$(tools/find-python $(PYTHON_VERSION) "Blender $(BLENDER)") || exit 1; \
	    echo "$(VENV): Blender $(BLENDER) on $$py"; "$$py" -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip==24.2
	$(PY) -m pip install --quiet -r requirements-dev.txt -c $(CONSTRAINTS)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	PARASCALE_DATA=$(PARASCALE_DATA) $(VENV)/bin/parascale demo --out $(OUT)/demo

# The full video-tracking set (every clip, fox, fern: minutes of COLMAP, no bpy) and the full
# batch set (killed workers and drivers, transfer jobs: minutes of Ray and bpy) run on the
# default Blender's Python; the other versions run their quick sets.
TRACK_FULL := $(if $(filter $(DEFAULT_BLENDER),$(BLENDER)),1,)
BATCH_FULL := $(TRACK_FULL)
# Two workers (pytest-xdist), a module per worker at a time except the long independent
# ones (tests/conftest.py); XDIST= runs in one process.
XDIST ?= -n 2 --dist loadgroup
test: $(STAMP)
	PARASCALE_DATA=$(PARASCALE_DATA) PARASCALE_TRACK_FULL=$(TRACK_FULL) PARASCALE_BATCH_FULL=$(BATCH_FULL) \
	    $(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

# The inner loop: everything but the tests marked slow (tracking, demo, kill, fuzz, benches,
# venv and zip builds), under a minute; one room: make test-quick PYTEST_ARGS=tests/core
test-quick: $(STAMP)
	PARASCALE_DATA=$(PARASCALE_DATA) $(PY) -m pytest $(XDIST) -m "not slow" $(PYTEST_ARGS)

# Every supported Blender in turn (each in its own venv, built on first use), then the same
# transfer on all of them compared key by key. Runs every version even after a failure,
# and prints each suite's wall time.
test-all:
	@failed=""; times=""; for v in $(SUPPORTED_BLENDERS); do start=$$(date +%s); \
	    $(MAKE) --no-print-directory test BLENDER=$$v || failed="$$failed $$v"; \
	    times="$$times  Blender $$v: $$(( $$(date +%s) - start )) s\n"; done; \
	start=$$(date +%s); \
	PARASCALE_BLENDER_VENVS="$(foreach v,$(SUPPORTED_BLENDERS),.venv-$(v))" \
	    $(MAKE) --no-print-directory test BLENDER=$(BLENDER) XDIST= PYTEST_ARGS="-s tests/blender/test_versions.py" \
	    || failed="$$failed cross-version"; \
	times="$$times  cross-version transfer: $$(( $$(date +%s) - start )) s\n"; \
	printf "test-all wall times (venv setup included):\n$$times"; \
	if [ -n "$$failed" ]; then echo "test-all: FAILED on:$$failed" >&2; exit 1; fi; echo "test-all: passed on $(SUPPORTED_BLENDERS)"

# The reader fuzz suite at 10x the examples `make test` runs (FUZZ_EXAMPLES per reader).
FUZZ_EXAMPLES ?= 20000
.PHONY: fuzz
fuzz: $(STAMP)
	PARASCALE_DATA=$(PARASCALE_DATA) PARASCALE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -s tests/formats/test_fuzz.py $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/parascale bench --json $(OUT)/bench.json

validate: $(STAMP)
	$(BLENDER_EXT) validate .

# The OpenCV wheels named in blender_manifest.toml, fetched from PyPI, never committed.
# (The install test fetches only this machine's wheel and builds this platform's zip.)
wheels: $(STAMP)
	for p in $(WHEEL_PLATFORMS); do \
	    $(PY) -m pip download --quiet --no-deps --only-binary=:all: --dest wheels \
	        --python-version 3.11 --platform $$p $(OPENCV_WHEEL) || exit 1; done
	for py in 3.11 3.13; do for p in $(PYCOLMAP_PLATFORMS); do \
	    $(PY) -m pip download --quiet --no-deps --only-binary=:all: --dest wheels \
	        --python-version $$py --platform $$p $(PYCOLMAP_WHEEL) || exit 1; done; done

# One build serves every supported Blender (blender_version_min in the manifest).
zip: wheels
	mkdir -p dist
	$(BLENDER_EXT) build --split-platforms --output-dir dist

# This machine's zip alone: fetches only its wheels (OpenCV, pycolmap for Python 3.11 and 3.13)
# and builds dist/parascale-<version>-<platform>.zip; PLATFORM=windows-x64 etc. for another one.
# The install test (tests/ui/test_extension.py) builds its zip with the same script.
zip-here: $(STAMP)
	$(PY) tools/zip_here.py --output-dir dist $(if $(PLATFORM),--platform $(PLATFORM),)

clean:
	rm -rf .venv .venv-* dist wheels out .pytest_cache .hypothesis
