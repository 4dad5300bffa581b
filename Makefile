# The two commands of the README, and what they need.
#
#   make demo   build everything (host + built-in Wasm plugins) and run the demo
#   make test   install what the tests need, then fmt, clippy and every test

CARGO ?= cargo

.PHONY: demo test toolchain lint bench clean

demo: toolchain
	$(CARGO) run -p kansoku -- demo

test: toolchain
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace

# rust-toolchain.toml pins the compiler; the Wasm target must be added once
# per machine (rustup does not install targets on its own here).
toolchain:
	rustup target add wasm32-wasip2

lint: toolchain
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: toolchain
	$(CARGO) bench -p kansoku-suite

clean:
	$(CARGO) clean
