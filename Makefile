# Thin wrapper over CMake.  Every target configures what it needs.
BUILD ?= build
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all demo test bench install clean

all:
	cmake -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD)/release -j $(JOBS)

demo: all
	bash examples/demo.sh $(BUILD)/release

test:
	bash tests/run-all.sh

bench:
	bash bench/run.sh

install: all
	cmake --install $(BUILD)/release --prefix $(PREFIX)

clean:
	rm -rf $(BUILD)
