# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.parascale-installed
BLENDER_EXT = $(PY) $(VENV)/lib/python3.11/site-packages/bpy/5.0/scripts/addons_core/bl_pkg/cli/blender_ext.py
PARASCALE_DATA ?= $(abspath ../shared/data)
OUT ?= out
OPENCV_WHEEL := opencv-python-headless==4.11.0.86
PYCOLMAP_WHEEL := pycolmap==4.2.1

.PHONY: setup demo test bench zip validate clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==24.2
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/parascale demo --out $(OUT)/demo

test: $(STAMP)
	PARASCALE_DATA=$(PARASCALE_DATA) $(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/parascale bench --json $(OUT)/bench.json

validate: $(STAMP)
	$(BLENDER_EXT) validate .

# The OpenCV wheels named in blender_manifest.toml, fetched from PyPI, never committed.
wheels: $(STAMP)
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --dest wheels --python-version 3.11 \
	    --platform manylinux2014_x86_64 $(OPENCV_WHEEL)
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --dest wheels --python-version 3.11 \
	    --platform win_amd64 $(OPENCV_WHEEL)
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --dest wheels --python-version 3.11 \
	    --platform macosx_13_0_arm64 $(OPENCV_WHEEL)
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --dest wheels --python-version 3.11 \
	    --platform macosx_13_0_x86_64 $(OPENCV_WHEEL)
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --dest wheels --python-version 3.11 \
	    --platform manylinux_2_28_x86_64 $(PYCOLMAP_WHEEL)
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --dest wheels --python-version 3.11 \
	    --platform win_amd64 $(PYCOLMAP_WHEEL)
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --dest wheels --python-version 3.11 \
	    --platform macosx_14_0_arm64 $(PYCOLMAP_WHEEL)

zip: wheels
	mkdir -p dist
	$(BLENDER_EXT) build --split-platforms --output-dir dist

clean:
	rm -rf $(VENV) dist wheels out .pytest_cache .hypothesis
