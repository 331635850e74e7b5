# goc: thin wrapper over CMake. `make run` is the tour, `make test` the
# suite, `make bench` the comparison with Go. Each installs what it needs
# on a fresh Debian machine (as root).

BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build run test bench clean

all: build

deps:
	@command -v cmake >/dev/null && command -v cc >/dev/null && \
	  [ -f /usr/include/zlib.h ] || \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    build-essential cmake pkg-config zlib1g-dev; }

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	@examples/tour.sh $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

bench: build
	BENCH_BUILD=$(BUILD) bench/run.sh

clean:
	rm -rf $(BUILD)
