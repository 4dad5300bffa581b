# The two commands of the README, and what they need.
#
#   make demo   build everything (host + built-in Wasm plugins) and run the demo
#   make test   install what the tests need (Wasm target, Python venv), then fmt, clippy and every test

CARGO ?= cargo

.PHONY: demo test toolchain venv lint bench clean

demo: toolchain
	$(CARGO) run -p kansoku -- demo

test: toolchain venv
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace

# rust-toolchain.toml pins the compiler; the Wasm target must be added once
# per machine (rustup does not install targets on its own here).
toolchain:
	rustup target add wasm32-wasip2

# Python for the ml-score model scripts (their tests compare the plugin's
# scores with onnxruntime's, scripts/model/README.md) and for the
# institution-side client (clients/python/README.md), which the storage
# tests use to unwrap keys as an institution does; DuckDB, which the storage
# tests read the partitions with (tests/requirements.txt).
venv: .venv/bin/python

.venv/bin/python: scripts/model/requirements.txt clients/python/requirements.txt tests/requirements.txt
	python3 -m venv .venv
	.venv/bin/pip install -r scripts/model/requirements.txt -r clients/python/requirements.txt -r tests/requirements.txt
	touch .venv/bin/python

lint: toolchain
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: toolchain
	$(CARGO) bench -p kansoku-suite

clean:
	$(CARGO) clean
